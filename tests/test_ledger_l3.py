"""L-3 on real claims: fund cash equals contributions − compensation + returns.

SPEC §6 example 1 (SKD) and example 4 (XB) run through the HTTP API — filing, reviews,
approval, payments, a recovery each — and after every money step each fund's accounts
(cash, payable to the bank, due-to / due-from the other fund, receivable from the bank,
compensation expense, recovery income) are compared with figures this module computes
from SPEC's numbers alone, never from the app's own arithmetic: a payment or approval
leg posted to the wrong account, fund or side turns it red."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.ledger import service as ledger
from app.models import LedgerAccount
from tests.fixtures.api import Api, api_fixture
from tests.fixtures.factories import member_enterprise
from tests.fixtures.ledger import assert_books_balance
from tests.fixtures.seed import SKD_CAPITAL, XB_INITIAL_CAPITAL_FEN
from tests.fixtures.xb import base_loans, to_approval, xb_loan

YUAN = 100  # fen

# --- SPEC §6 example 1, in fen, from SPEC's figures -------------------------------------
SKD_BANK, SKD_USER = "CCB_JS", "bank_ccb"  # SKD-Q2: in its first year, so no cap applies
CITY, PROV = "SKD_CITY_320500", "SKD_PROV"
PRINCIPAL = 5_000_000 * YUAN
LOSS = 3_000_000 * YUAN  # "unpaid principal 3,000,000.00 at claim"
PROVINCE_SHARE = LOSS * 40 // 100  # SKD-S1, SKD1: province 40 %
CITY_SHARE = LOSS * 40 // 100  # city 40 % (the bank bears 20 %)
FUND_SHARE = PROVINCE_SHARE + CITY_SHARE  # the city fund pays it all to the bank
RECOVERED, COSTS = 1_000_000 * YUAN, 50_000 * YUAN
RETURNED = (RECOVERED - COSTS) * FUND_SHARE // LOSS  # SKD-R1: at the compensation ratio
RETURNED_PROVINCE = RETURNED * PROVINCE_SHARE // FUND_SHARE
RETURNED_CITY = RETURNED - RETURNED_PROVINCE

# --- SPEC §6 example 4, in fen ----------------------------------------------------------
XB_BANK, XB_USER, POOL = "LYG_RCB", "bank_lyg", "XB_POOL"
XB_LOSS = 2_000_000 * YUAN
XB_CREDIT_FUND = XB_LOSS * 80 // 100  # XB-S1 credit: fund 80 %, bank 20 %
XB_GUARANTEED_FUND = XB_LOSS * 50 // 100  # guaranteed: fund 50 %, guarantor 40 %, bank 10 %
XB_RECOVERED, XB_COSTS = 500_000 * YUAN, 50_000 * YUAN
XB_RETURNED = (XB_RECOVERED - XB_COSTS) * 80 // 100  # XB-R1: at the agreed ratio

CAPITAL = {fund: fen for fund, _, fen, _ in SKD_CAPITAL} | {POOL: XB_INITIAL_CAPITAL_FEN}


def test_the_figures_are_spec_s() -> None:
    """The module's arithmetic gives SPEC §6's printed figures."""
    assert (PROVINCE_SHARE, CITY_SHARE, FUND_SHARE) == (1_200_000_00, 1_200_000_00, 2_400_000_00)
    assert (RETURNED, RETURNED_CITY, RETURNED_PROVINCE) == (760_000_00, 380_000_00, 380_000_00)
    assert (XB_CREDIT_FUND, XB_GUARANTEED_FUND) == (1_600_000_00, 1_000_000_00)


@pytest.fixture
def api(  # type: ignore[no-untyped-def]
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session], auth
) -> Iterator[Api]:
    yield from api_fixture(settings, engine, session_factory, auth)


def book(session: Session, fund: str) -> dict[str, int]:
    """The fund's non-zero balances by account (`kind` or `kind:counterparty`); capital
    and the memo accounts of guarantee exposure are not cash movements."""
    session.expire_all()
    out: dict[str, int] = {}
    account: LedgerAccount
    for account, total in ledger.repo.balances(session, as_of=None, funds={fund}):
        if account.kind == "contributed_capital" or account.kind.endswith(("_memo", "_contra")):
            continue
        key = f"{account.kind}:{account.counterparty}" if account.counterparty else account.kind
        out[key] = out.get(key, 0) + total
    return {k: v for k, v in out.items() if v}


def expected(
    fund: str,
    bank: str,
    *,
    paid: int = 0,
    received: int = 0,
    compensation: int = 0,
    returns: int = 0,
    payable_bank: int = 0,
    receivable_bank: int = 0,
    due_from: tuple[str, int] = ("", 0),
    due_to: tuple[str, int] = ("", 0),
) -> dict[str, int]:
    """L-3: cash = contributions − compensation + returns, where what is not settled in
    cash yet sits in the open items: payable to / receivable from `bank`, due from / to
    the other fund (fund, amount). `paid` and `received`: the cash that left and came in;
    compensation and returns are the bank's."""
    cash = CAPITAL[fund] - paid + received
    open_items = payable_bank + receivable_bank + due_from[1] + due_to[1]
    assert cash == CAPITAL[fund] - compensation + returns - open_items, "L-3 on the figures"
    want = {
        "cash": cash,
        f"compensation_expense:{bank}": compensation,
        f"recovery_income:{bank}": -returns,
        f"payable_bank:{bank}": payable_bank,
        f"receivable_bank:{bank}": receivable_bank,
        f"due_from_fund:{due_from[0]}": due_from[1],
        f"due_to_fund:{due_to[0]}": due_to[1],
    }
    return {k: v for k, v in want.items() if v}


def test_l3_skd_example_1_cash_follows_contributions_compensation_and_returns(
    api: Api, session: Session
) -> None:
    """SKD-C1, SKD-R1: the city fund pays the whole fund share to the bank, the province
    reimburses its part, the bank returns the recovery to the city fund, which passes
    the province's part on; each fund's cash is its capital less its own share plus its
    own part of the return, and nothing stays open."""
    assert book(session, CITY) == expected(CITY, SKD_BANK)
    assert book(session, PROV) == expected(PROV, SKD_BANK)
    code = member_enterprise(session, region="320500", revenue_yuan=15_000_000).credit_code
    loan = api.file_loan(SKD_USER, code, f"{PRINCIPAL // YUAN}.00", "2026-03-02", "2026-06-02")
    api.repay(SKD_USER, loan, "2026-05-20", f"{(PRINCIPAL - LOSS) // YUAN}.00")
    c = api.claim(SKD_USER, loan, "2026-08-31")
    c = api.through_reviews(SKD_USER, "city_suzhou", c["id"], "2026-08-31", "2026-09-08")
    assert c["status"] == "approved"
    # approved: the city owes the bank the whole fund share; the province owes the city
    assert book(session, CITY) == expected(
        CITY,
        SKD_BANK,
        compensation=CITY_SHARE,
        payable_bank=-FUND_SHARE,
        due_from=(PROV, PROVINCE_SHARE),
    )
    assert book(session, PROV) == expected(
        PROV, SKD_BANK, compensation=PROVINCE_SHARE, due_to=(CITY, -PROVINCE_SHARE)
    )

    api.pay("city-payment", "fund_suzhou", c["id"], "2026-09-10")
    assert book(session, CITY) == expected(
        CITY, SKD_BANK, paid=FUND_SHARE, compensation=CITY_SHARE, due_from=(PROV, PROVINCE_SHARE)
    )
    assert book(session, PROV) == expected(
        PROV, SKD_BANK, compensation=PROVINCE_SHARE, due_to=(CITY, -PROVINCE_SHARE)
    )

    api.pay("province-reimbursement", "fund_province", c["id"], "2026-09-15")
    assert book(session, CITY) == expected(
        CITY, SKD_BANK, paid=FUND_SHARE, received=PROVINCE_SHARE, compensation=CITY_SHARE
    )
    assert book(session, PROV) == expected(
        PROV, SKD_BANK, paid=PROVINCE_SHARE, compensation=PROVINCE_SHARE
    )

    api.call(
        "2026-10-20",
        SKD_USER,
        "POST",
        f"/claims/{c['id']}/recoveries",
        201,
        json={
            "recovered_on": "2026-10-20",
            "amount": f"{RECOVERED // YUAN}.00",
            "costs": f"{COSTS // YUAN}.00",
        },
    )
    # the bank returned 760,000.00 to the city, which passed 380,000.00 on the same day
    assert book(session, CITY) == expected(
        CITY,
        SKD_BANK,
        paid=FUND_SHARE + RETURNED_PROVINCE,
        received=PROVINCE_SHARE + RETURNED,
        compensation=CITY_SHARE,
        returns=RETURNED_CITY,
    )
    assert book(session, PROV) == expected(
        PROV,
        SKD_BANK,
        paid=PROVINCE_SHARE,
        received=RETURNED_PROVINCE,
        compensation=PROVINCE_SHARE,
        returns=RETURNED_PROVINCE,
    )
    assert_books_balance(session)


def test_l3_xb_example_4_cash_follows_contributions_compensation_and_returns(
    api: Api, session: Session
) -> None:
    """XB-S1, XB-C2, XB-R1: the committee's approvals owe the bank the fund's shares of a
    credit and a guaranteed loss (the guarantor's part is a memo, never the pool's cash);
    the payment settles them from the pool's cash; the bank's recovery on the credit loan
    is owed to the pool at the agreed ratio until it is received."""
    assert book(session, POOL) == expected(POOL, XB_BANK)
    base_loans(api, session, XB_USER, 18, "3000000.00")  # XB-Q1 basis: 54,000,000 performing
    loss = f"{XB_LOSS // YUAN}.00"
    claims = []
    for guaranteed in (False, True):
        loan = xb_loan(api, session, XB_USER, loss, guaranteed=guaranteed)
        c = to_approval(api, XB_USER, loan)  # the manager's opinion, the committee's approval
        assert c["status"] == "approved"
        claims.append(c)
    owed = XB_CREDIT_FUND + XB_GUARANTEED_FUND
    assert book(session, POOL) == expected(POOL, XB_BANK, compensation=owed, payable_bank=-owed)

    for c in claims:
        api.pay("payment", "fund_xb_pay", c["id"], "2026-02-13")
    assert book(session, POOL) == expected(POOL, XB_BANK, paid=owed, compensation=owed)

    credit_claim = claims[0]["id"]
    api.call(
        "2026-03-02",
        XB_USER,
        "POST",
        f"/claims/{credit_claim}/recoveries",
        201,
        json={
            "recovered_on": "2026-03-02",
            "amount": f"{XB_RECOVERED // YUAN}.00",
            "costs": f"{XB_COSTS // YUAN}.00",
        },
    )
    assert book(session, POOL) == expected(
        POOL,
        XB_BANK,
        paid=owed,
        compensation=owed,
        returns=XB_RETURNED,
        receivable_bank=XB_RETURNED,
    )
    api.call(
        "2026-03-05",
        "fund_xb",
        "POST",
        f"/claims/{credit_claim}/receipts",
        201,
        json={"received_on": "2026-03-05", "amount": f"{XB_RETURNED // YUAN}.00"},
    )
    assert book(session, POOL) == expected(
        POOL, XB_BANK, paid=owed, received=XB_RETURNED, compensation=owed, returns=XB_RETURNED
    )
    assert_books_balance(session)
