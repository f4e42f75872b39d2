"""The quarterly report's figures (issue #14 parts 1 and 6): a small book on both
programmes checked to the fen — SKD-Q3's NPL ratio, the SKD-Q1 cap example (工商银行
8,000,000.00 → 95,736.98 approved, 13,642.51 returned), SPEC §6 example 1 (2,400,000.00
paid, 1,200,000.00 reimbursed, 760,000.00 returned), XB-Q1 limits, XB-Q2 and XB-F1 —
bank rows summing to the totals, the reconciliation with the ledger, reproducibility as
of a cut-off, scoping, open quarters, and the exposure view's headroom if every claim
under review were approved."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.claims import service as claims
from app.claims.workflow import StepInput
from app.errors import Forbidden, Unprocessable
from app.evaluations.service import bank_ratios, evaluate
from app.ledger import service as ledger
from app.loans import service as loans
from app.loans import servicing
from app.loans.schemas import DelinquencyIn, GuarantorConsentIn, LoanFile
from app.models import Claim, Fund, LedgerAccount, Loan, LoanRepayment
from app.programs.base import get_program
from app.programs.sukedai.policy import QUARTER_END
from app.reports.document import ReportDocument, canonical_json, to_json_obj
from app.reports.quarterly import build_quarterly
from tests.fixtures.factories import (
    GUARANTOR,
    LoanBook,
    loan_book,
    member_enterprise,
    principal,
    recovery,
    repayment,
    skd_claim,
    skd_loan,
    xb_claim,
    xb_enterprise,
    xb_loan,
)

Q3_START, Q3_END = date(2026, 7, 1), date(2026, 9, 30)


@dataclass(frozen=True)
class Book:
    loans: LoanBook
    q3_loan: Loan  # 江苏银行 1,500,000.00 disbursed in 2026-Q3
    icbc: Claim  # the SKD-Q1 cap example
    example_1: Claim  # SPEC §6 example 1 (建设银行, SKD-Q2 exempt)
    xb: Claim  # capped by XB-Q1, paid, collection due and partly received
    xb_waiting: Claim  # with the XB manager past its deadline at the quarter end


@pytest.fixture
def book(session: Session) -> Book:
    loans = loan_book(session)
    q3_loan = skd_loan(
        session,
        bank="bank_jsb",
        region="320100",
        principal_yuan="1500000.00",
        disbursed=date(2026, 7, 15),
        maturity=date(2027, 7, 15),
    )
    # SKD-Q1: 工商银行 cooperates since 2024-07-01, this is its only loan: annualized
    # 8,000,000.00 × 182 / 365 × 80 % = 3,191,232.87, cap 3 % = 95,736.98
    icbc = skd_claim(session, loan=loans.icbc_skd2_overdue, status="reimbursed")
    recovery(session, icbc, on=date(2026, 9, 20), amount_fen=1_200_000_00, costs_fen=60_000_00)
    # SPEC §6 example 1: 5,000,000.00 SKD1, 2,000,000.00 repaid, 3,000,000.00 lost
    ex1_loan = skd_loan(session, principal_yuan="5000000.00")
    repayment(session, ex1_loan, on=date(2026, 5, 20), principal_fen=2_000_000_00)
    example_1 = skd_claim(session, loan=ex1_loan, status="reimbursed")
    recovery(session, example_1, on=date(2026, 9, 25), amount_fen=1_000_000_00, costs_fen=50_000_00)
    # XB-Q1: 连云港农商行's base sub-fund held 5,600,000.00 on 2026-06-30: limit 280,000.00
    xb = xb_claim(session, loan=loans.xb_overdue, filed=date(2026, 7, 10), status="paid")
    recovery(session, xb, on=date(2026, 8, 20), amount_fen=500_000_00)  # 70,000.00 due
    claims.receive(
        session,
        claim_id=xb.id,
        received_on=date(2026, 9, 1),
        amount_fen=30_000_00,
        actor=principal(session, "fund_xb"),
        today=date(2026, 9, 1),
        now=datetime(2026, 3, 31, 9, tzinfo=UTC),
    )
    session.commit()
    xb_waiting = xb_claim(session, bank="bank_jsb", filed=date(2026, 9, 10))
    return Book(loans, q3_loan, icbc, example_1, xb, xb_waiting)


def report(
    session: Session,
    program: str,
    *,
    who: str = "regulator",
    cutoff: datetime | None = None,
    quarter: int = 3,
    today: date | None = None,
) -> ReportDocument:
    return build_quarterly(
        session,
        program=program,
        year=2026,
        quarter=quarter,
        principal=principal(session, who),
        cutoff_at=cutoff or datetime.now(UTC),
        today=today,
    )


def rows(doc: ReportDocument, section: str, key: str = "bank_code") -> dict[Any, dict[str, Any]]:
    return {r[key]: r for r in doc.section(section).rows}


ADDITIVE = (
    "loans",
    "principal",
    "outstanding",
    "npl",
    "claims_filed",
    "requested",
    "claims_approved",
    "approved",
    "claims_capped",
    "capped_bank_bears",
    "claims_rejected",
    "claims_paid",
    "paid",
    "recoveries",
    "recovered",
    "recovery_costs",
    "returned",
)


def assert_sums(doc: ReportDocument, extra: tuple[str, ...] = ()) -> None:
    """Product rows sum to their bank's row, bank rows to the totals (enterprises:
    distinct, not additive)."""
    total = doc.section("totals").rows[0]
    banks = doc.section("banks").rows
    for name in ADDITIVE + extra:
        assert sum(b[name] for b in banks) == total[name], name
        for b in banks:
            of_bank = [
                p[name] for p in doc.section("products").rows if p["bank_code"] == b["bank_code"]
            ]
            assert sum(of_bank) == b[name], (b["bank_code"], name)


def ledger_moves(
    session: Session,
    program: str,
    kind: str,
    events: tuple[str, ...],
    cutoff: datetime,
    fund: str | None = None,
) -> int:
    """Σ of the legs on the programme's `kind` accounts (of `fund`) in the quarter, in
    entries of `events` recorded by the cut-off, read through the ledger service's
    statements."""
    stmt = (
        select(LedgerAccount)
        .join(Fund, Fund.code == LedgerAccount.fund_code)
        .where(LedgerAccount.kind == kind, Fund.program == program)
    )
    if fund is not None:
        stmt = stmt.where(LedgerAccount.fund_code == fund)
    total = 0
    for account in session.scalars(stmt):
        st = ledger.statement(session, account, since=Q3_START, until=Q3_END)
        total += sum(
            line.amount_fen
            for line in st.lines
            if line.entry.event_type in events and line.entry.recorded_at <= cutoff
        )
    return total


# --- SKD -------------------------------------------------------------------------------------
def test_skd_quarter_to_the_fen_with_the_spec_examples_and_the_ledger(
    session: Session, book: Book
) -> None:
    """SKD-Q3, SKD-Q1/Q2, SKD-S1, SKD-C1, SKD-R1 in 2026-Q3 as the regulator sees it."""
    cutoff = datetime.now(UTC)
    doc = report(session, "SKD", cutoff=cutoff)
    assert (doc.kind, doc.program, doc.period, doc.scope) == ("quarterly", "SKD", "2026-Q3", "")
    assert doc.meta["closed"] is True and doc.meta["as_of"] == Q3_END
    banks = rows(doc, "banks")
    jsb, icbc, ccb = banks["JSB"], banks["ICBC_JS"], banks["CCB_JS"]
    # 江苏银行: the Q3 loan; 5,000,000.00 + 2,000,000.00 + 1,500,000.00 owing, the
    # 2,000,000.00 due 2026-03-10 is 204 days past due: 23.52 %
    assert (jsb["loans"], jsb["principal"], jsb["enterprises"]) == (1, 1_500_000_00, 1)
    assert (jsb["outstanding"], jsb["npl"], jsb["npl_ratio_bp"]) == (
        8_500_000_00,
        2_000_000_00,
        2352,
    )
    assert jsb["npl_at_threshold"] is True and jsb["claims_filed"] == 0
    # 工商银行: the SKD-Q1 example to the fen
    assert (icbc["claims_filed"], icbc["requested"]) == (1, 6_400_000_00)
    assert (icbc["claims_approved"], icbc["approved"]) == (1, 95_736_98)
    assert (icbc["claims_capped"], icbc["capped_bank_bears"]) == (1, 6_304_263_02)
    assert (icbc["claims_paid"], icbc["paid"]) == (1, 95_736_98)
    assert (icbc["recovered"], icbc["recovery_costs"], icbc["returned"]) == (
        1_200_000_00,
        60_000_00,
        13_642_51,
    )
    assert (icbc["outstanding"], icbc["npl"], icbc["npl_ratio_bp"]) == (
        8_000_000_00,
        8_000_000_00,
        10_000,
    )
    # 建设银行: SPEC §6 example 1 beside its other loans (2,000,000.00 and 3,000,000.00
    # owing, both 90+ days past due; the 2,000,000.00 repaid on 2026-09-09)
    assert (ccb["approved"], ccb["paid"], ccb["claims_capped"]) == (2_400_000_00, 2_400_000_00, 0)
    assert (ccb["recovered"], ccb["recovery_costs"], ccb["returned"]) == (
        1_000_000_00,
        50_000_00,
        760_000_00,
    )
    assert (ccb["outstanding"], ccb["npl"]) == (5_000_000_00, 5_000_000_00)
    products = {(r["bank_code"], r["product"]): r for r in doc.section("products").rows}
    assert products[("ICBC_JS", "SKD2")]["approved"] == 95_736_98
    assert products[("JSB", "SKD1")]["outstanding"] == 8_500_000_00
    assert_sums(doc)
    total = doc.section("totals").rows[0]
    assert (total["approved"], total["paid"], total["returned"]) == (
        2_495_736_98,
        2_495_736_98,
        773_642_51,
    )
    # the NPL figures are SKD-Q3's, as the quarter-end evaluation computes them
    ratios = bank_ratios(session, "SKD", Q3_END, QUARTER_END)
    for code, r in ratios.items():
        assert (banks[code]["outstanding"], banks[code]["npl"]) == (r.outstanding_fen, r.npl_fen)

    caps = rows(doc, "caps")
    assert {
        k: caps["ICBC_JS"][k] for k in ("exempt", "annualized_principal", "cap", "compensated")
    } == {
        "exempt": False,
        "annualized_principal": 3_191_232_87,
        "cap": 95_736_98,
        "compensated": 95_736_98,
    }
    # 95,736.98 ÷ 3,191,232.8767 = 2.99999… %: rounded down, 299 bp; nothing left
    assert (caps["ICBC_JS"]["compensation_rate_bp"], caps["ICBC_JS"]["headroom"]) == (299, 0)
    assert (caps["CCB_JS"]["exempt"], caps["CCB_JS"]["headroom"]) == (True, None)  # SKD-Q2
    assert caps["CCB_JS"]["first_year_ends"] == date(2027, 3, 1)
    funds = rows(doc, "city_funds", "fund_code")
    # the approved 95,736.98 split in proportion: the province's part rounded down (M-2)
    assert funds["SKD_CITY_320100"]["paid"] == 95_736_98
    assert funds["SKD_CITY_320100"]["reimbursed"] == 47_868_49
    assert (funds["SKD_CITY_320500"]["paid"], funds["SKD_CITY_320500"]["reimbursed"]) == (
        2_400_000_00,
        1_200_000_00,
    )
    assert funds["SKD_CITY_320500"]["passed_on"] == 380_000_00
    assert doc.section("overdue_steps").rows == ()  # SKD stores no step deadlines
    suspended = rows(doc, "suspensions")
    assert suspended["BOC_JS"]["kind"] == "agreement_suspended"

    # part 6: the report's money equals the ledger's for the same cut-off
    recon = rows(doc, "reconciliation", "line")
    assert all(r["difference"] == 0 for r in recon.values()), recon
    assert list(recon) == ["approved", "paid", "reimbursed", "returned", "passed_on"]
    assert recon["reimbursed"]["ledger"] == 47_868_49 + 1_200_000_00
    paid = ledger_moves(session, "SKD", "payable_bank", ("claim.city_payment",), cutoff)
    assert paid == total["paid"]
    reimbursed = ledger_moves(
        session, "SKD", "due_to_fund", ("claim.province_reimbursement",), cutoff, fund="SKD_PROV"
    )
    assert reimbursed == 47_868_49 + 1_200_000_00
    assert (
        -ledger_moves(session, "SKD", "recovery_income", ("claim.recovery",), cutoff)
        == total["returned"]
    )
    assert [c.section for c in doc.charts] == ["banks", "caps", "trend"]


def test_skd_trend_reads_the_quarter_end_evaluation(session: Session, book: Book) -> None:
    """SKD-Q3: the quarter before is read from its stored evaluation."""
    run = evaluate(
        session,
        program="SKD",
        year=2026,
        quarter=2,
        actor=principal(session, "province"),
        today=date(2026, 7, 20),
    )
    session.commit()
    trend = rows(report(session, "SKD"), "trend", "period")
    q2 = bank_ratios(session, "SKD", date(2026, 6, 30), QUARTER_END)
    assert trend["2026-Q2"]["source"] == f"evaluation {run.id}"
    assert trend["2026-Q2"]["outstanding"] == sum(r.outstanding_fen for r in q2.values())
    assert trend["2026-Q2"]["npl"] == sum(r.npl_fen for r in q2.values())
    assert (trend["2026-Q1"]["source"], trend["2026-Q1"]["npl"]) == (
        "computed, not evaluated",
        None,
    )
    assert trend["2026-Q3"]["source"] == "this report"


# --- XB --------------------------------------------------------------------------------------
def test_xb_quarter_limits_pool_and_overdue_steps(session: Session, book: Book) -> None:
    """XB-Q1 (5 % of the base sub-fund's 2026-06-30 principal, reached and suspending),
    XB-Q2, XB-F1, XB-R1 (a distribution overdue), XB-C2 (the manager's opinion late)."""
    cutoff = datetime.now(UTC)
    doc = report(session, "XB", cutoff=cutoff)
    banks = rows(doc, "banks")
    lyg = banks["LYG_RCB"]
    assert (lyg["claims_approved"], lyg["approved"]) == (1, 280_000_00)
    assert (lyg["claims_capped"], lyg["capped_bank_bears"]) == (1, 1_320_000_00)
    assert (lyg["paid"], lyg["recovered"], lyg["returned"], lyg["received"]) == (
        280_000_00,
        500_000_00,
        70_000_00,
        30_000_00,
    )
    # 3,000,000.00 performing, 2,000,000.00 past due since 2026-01-06, 600,000.00 of the
    # guaranteed loan due 2026-07-04: 88 days past due, not yet non-performing
    assert (lyg["outstanding"], lyg["npl"], lyg["npl_ratio_bp"]) == (
        5_600_000_00,
        2_000_000_00,
        3571,
    )
    products = {(r["bank_code"], r["product"]): r for r in doc.section("products").rows}
    assert products[("LYG_RCB", "XB_ZQCZD · credit")]["outstanding"] == 5_000_000_00
    assert products[("LYG_RCB", "XB_ZQCZD · guaranteed")]["outstanding"] == 600_000_00
    assert products[("LYG_RCB", "XB_ZQCZD · guaranteed")]["npl"] == 0
    assert_sums(doc, ("refunds", "received"))

    caps = {(r["bank_code"], r["fund_code"]): r for r in doc.section("caps").rows}
    base = caps[("LYG_RCB", "XB_ZQCZD")]
    assert (base["quarter_end"], base["basis_source"], base["basis"]) == (
        date(2026, 6, 30),
        "computed",
        5_600_000_00,
    )
    assert (base["annual_limit"], base["warning_at"], base["used"], base["usage_bp"]) == (
        280_000_00,
        140_000_00,
        280_000_00,
        10_000,
    )
    assert (base["warning"], base["limit_reached"], base["headroom"]) == (True, True, 0)
    assert (base["under_review"], base["headroom_if_approved"]) == (0, 0)  # decided
    assert caps[("LYG_RCB", "XB_KCD")]["limit_rate_bp"] == 300  # its own setting
    assert caps[("JSB", "XB_ZQCZD")]["under_review"] == book.xb_waiting.requested_fen
    kinds = {(r["bank_code"], r["kind"]) for r in doc.section("suspensions").rows}
    assert {("LYG_RCB", "agreement_suspended"), ("LYG_RCB", "limit_reached")} <= kinds

    pool = doc.section("pool").rows[0]
    assert (pool["capital_paid_in"], pool["compensated"], pool["usage_bp"]) == (
        100_000_000_00,
        280_000_00,
        28,
    )
    assert (pool["stop_share_bp"], pool["stop_reached"], pool["stopped"]) == (5000, False, False)
    # net value: capital less the 280,000.00 approved plus the 70,000.00 due back
    assert pool["net_value"] == 100_000_000_00 - 280_000_00 + 70_000_00
    assert pool["loans_outstanding"] == doc.section("totals").rows[0]["outstanding"]
    assert pool["leverage_bp"] == pool["loans_outstanding"] * 10_000 // pool["net_value"]

    overdue = {(r["claim_id"], r["stage"]): r for r in doc.section("overdue_steps").rows}
    due = date.fromisoformat(book.xb_waiting.deadlines["manager_opinion"])
    late = overdue[(book.xb_waiting.id, "manager_review")]
    assert (late["deadline"], late["days_overdue"]) == (due, (Q3_END - due).days)
    assert (book.xb.id, "recovery_distribution") in overdue

    recon = rows(doc, "reconciliation", "line")
    assert all(r["difference"] == 0 for r in recon.values()), recon
    assert ledger_moves(session, "XB", "payable_bank", ("claim.payment",), cutoff) == 280_000_00
    assert -ledger_moves(session, "XB", "receivable_bank", ("claim.receipt",), cutoff) == 30_000_00


# --- the cut-off ------------------------------------------------------------------------------
def test_a_late_posting_after_the_cut_off_leaves_the_recomputation_unchanged(
    session: Session, book: Book
) -> None:
    """Issue part 4: rows recorded after the cut-off, dated in the quarter, change
    nothing in a recomputation with that cut-off; a later cut-off sees them."""
    # a claim filed and through the city review before the cut-off, decided after it
    waiting = skd_claim(
        session, loan=book.loans.jsb_overdue, filed=date(2026, 9, 20), status="city_approved"
    )
    cutoff = datetime.now(UTC)
    before = {
        p: canonical_json(to_json_obj(report(session, p, cutoff=cutoff))) for p in ("SKD", "XB")
    }
    later = cutoff + timedelta(seconds=1)
    while datetime.now(UTC) <= later:  # the late rows carry the clock's time
        pass
    now = datetime.now(UTC)
    jsb = principal(session, "bank_jsb")
    servicing.repay(
        session,
        loan_id=book.loans.jsb_performing.id,
        paid_on=date(2026, 9, 20),
        principal_fen=1_000_000_00,
        interest_fen=0,
        actor=jsb,
        today=date(2026, 9, 20),
        now=now,
    )
    servicing.repay(  # settles a loan 90+ days past due: it was late as of the cut-off
        session,
        loan_id=book.loans.ccb_part_repaid.id,
        paid_on=date(2026, 9, 25),
        principal_fen=2_000_000_00,
        interest_fen=0,
        actor=principal(session, "bank_ccb"),
        today=date(2026, 9, 25),
        now=now,
    )
    late_loan = loans.file_loan(  # its exposure entry recorded after the cut-off too
        session,
        principal=jsb,
        today=date(2026, 9, 30),
        now=now,
        data=LoanFile(
            program="SKD",
            enterprise_credit_code=member_enterprise(session, region="320100").credit_code,
            contract_no="SKD-LATE-1",
            principal="1000000.00",
            annual_rate_bp=340,
            disbursed_on=date(2026, 9, 28),
            maturity_on=date(2027, 3, 28),
            security="credit",
            controller_guarantee=True,
        ),
    )
    claims.receive(
        session,
        claim_id=book.xb.id,
        received_on=date(2026, 9, 25),
        amount_fen=40_000_00,
        actor=principal(session, "fund_xb"),
        today=date(2026, 9, 25),
        now=now,
    )
    claims.record_recovery(
        session,
        claim_id=book.icbc.id,
        recovered_on=date(2026, 9, 28),
        amount_fen=100_000_00,
        costs_fen=0,
        actor=principal(session, "bank_icbc"),
        today=date(2026, 9, 28),
        now=now,
    )
    servicing.report_delinquency(  # interest 122 days unpaid: non-performing (SKD-Q3)
        session,
        loan_id=book.loans.jsb_performing.id,
        data=DelinquencyIn(
            as_of=date(2026, 9, 30),
            overdue_since=date(2026, 6, 1),
            principal_overdue="0.00",
            interest_overdue="1000.00",
        ),
        actor=jsb,
        today=date(2026, 9, 30),
    )
    claims.act(
        session,
        claim_id=waiting.id,
        stage="province_review",
        step=StepInput(approve=True, comment="同意"),
        actor=principal(session, "province"),
        today=date(2026, 9, 29),
        now=now,
    )
    session.commit()
    assert late_loan.created_at > cutoff
    after = {
        p: canonical_json(to_json_obj(report(session, p, cutoff=cutoff))) for p in ("SKD", "XB")
    }
    assert after == before
    now_seen = rows(report(session, "SKD", cutoff=datetime.now(UTC)), "banks")
    moved = now_seen["JSB"]
    assert moved["npl"] == 2_000_000_00 + 5_000_000_00 - 1_000_000_00
    assert now_seen["ICBC_JS"]["recovered"] == 1_300_000_00
    assert now_seen["CCB_JS"]["npl"] == 3_000_000_00
    assert (moved["loans"], moved["claims_filed"], moved["claims_approved"]) == (2, 1, 1)
    assert moved["approved"] == waiting.approved_fen == 215_901_36  # SKD-Q1 caps it
    assert moved["outstanding"] == 8_500_000_00 - 1_000_000_00 + late_loan.principal_fen
    xb_now = rows(report(session, "XB", cutoff=datetime.now(UTC)), "banks")["LYG_RCB"]
    assert xb_now["received"] == 70_000_00


def test_xb_outstanding_per_sub_fund_and_security_as_of_a_cut_off(
    session: Session, book: Book
) -> None:
    """XB's products (sub-fund × security) read their outstanding from the day totals
    (migration 0025): per product it equals the loan-by-loan sum over the loans and
    repayments recorded by the cut-off; a guaranteed loan under the second sub-fund and a
    repayment recorded after the cut-off change nothing in the recomputation with that
    cut-off, and a later cut-off sees both."""
    part = get_program("XB").quarterly_report()
    assert part.day_total_product() is not None  # read from the day totals, not the loans

    def reported(cutoff: datetime) -> dict[tuple[str, str], int]:
        doc = report(session, "XB", cutoff=cutoff)
        return {
            (r["bank_code"], r["product"]): r["outstanding"]
            for r in doc.section("products").rows
            if r["outstanding"]
        }

    def summed(cutoff: datetime) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for x in session.scalars(select(Loan).where(Loan.program == "XB")):
            if x.created_at > cutoff or x.disbursed_on > Q3_END:
                continue
            paid = sum(
                r.principal_fen
                for r in session.scalars(select(LoanRepayment).where(LoanRepayment.loan_id == x.id))
                if r.created_at <= cutoff and r.paid_on <= Q3_END
            )
            key = (x.bank_code, f"{x.fund_code or 'XB_ZQCZD'} · {x.security}")
            out[key] = out.get(key, 0) + x.principal_fen - paid
        return {k: v for k, v in out.items() if v}

    cutoff = datetime.now(UTC)
    before = reported(cutoff)
    assert before == summed(cutoff)
    assert {("LYG_RCB", "XB_ZQCZD · credit"), ("LYG_RCB", "XB_ZQCZD · guaranteed")} <= set(before)
    later = cutoff + timedelta(seconds=1)
    while datetime.now(UTC) <= later:  # the late rows carry the clock's time
        pass
    now = datetime.now(UTC)
    lyg = principal(session, "bank_lyg")
    servicing.repay(
        session,
        loan_id=book.loans.xb_guaranteed.id,
        paid_on=date(2026, 9, 1),
        principal_fen=100_000_00,
        interest_fen=0,
        actor=lyg,
        today=date(2026, 9, 1),
        now=now,
    )
    loans.file_loan(
        session,
        principal=lyg,
        today=date(2026, 8, 3),
        now=now,
        data=LoanFile(
            program="XB",
            enterprise_credit_code=xb_enterprise(session).credit_code,
            contract_no="XB-LATE-G1",
            principal="900000.00",
            annual_rate_bp=330,
            disbursed_on=date(2026, 8, 3),
            maturity_on=date(2027, 2, 3),
            security="guaranteed",
            controller_guarantee=True,
            guarantor=GUARANTOR,
            guarantor_consent=GuarantorConsentIn(
                reference="连信担确〔2026〕901号", dated_on=date(2026, 8, 3)
            ),
            sub_fund="XB_KCD",
        ),
    )
    session.commit()
    session.expire_all()
    assert reported(cutoff) == before
    seen = reported(datetime.now(UTC))
    assert seen == summed(datetime.now(UTC))
    assert seen[("LYG_RCB", "XB_KCD · guaranteed")] == 900_000_00
    guaranteed = ("LYG_RCB", "XB_ZQCZD · guaranteed")
    assert seen[guaranteed] == before[guaranteed] - 100_000_00


# --- scope ------------------------------------------------------------------------------------
def test_each_caller_sees_its_scope(session: Session, book: Book) -> None:
    """A bank its own rows and totals; a city reviewer its region's funds; a city fund's
    manager its fund; the province fund's manager everything; another programme's
    manager nothing."""
    whole = rows(report(session, "SKD"), "banks")
    own = report(session, "SKD", who="bank_icbc")
    assert own.scope == "bank:ICBC_JS"
    assert list(rows(own, "banks")) == ["ICBC_JS"]
    assert own.section("totals").rows[0]["approved"] == 95_736_98
    assert rows(own, "banks")["ICBC_JS"] == whole["ICBC_JS"]
    assert list(rows(own, "caps")) == ["ICBC_JS"]
    assert list(rows(own, "city_funds", "fund_code")) == ["SKD_CITY_320100"]
    assert rows(own, "suspensions") == {}  # 中国银行's suspension is not its business

    suzhou = report(session, "SKD", who="city_suzhou")
    assert suzhou.scope == "region:320500"
    by_bank = rows(suzhou, "banks")
    assert by_bank["JSB"]["outstanding"] == 2_000_000_00  # its 苏州 loan only
    assert by_bank["CCB_JS"]["outstanding"] == whole["CCB_JS"]["outstanding"]
    assert "ICBC_JS" not in by_bank

    nanjing = report(session, "SKD", who="fund_nanjing")
    assert nanjing.scope == "fund:SKD_CITY_320100"
    assert rows(nanjing, "banks")["JSB"]["outstanding"] == 6_500_000_00
    assert rows(nanjing, "banks")["ICBC_JS"]["approved"] == 95_736_98
    assert report(session, "SKD", who="fund_province").scope == ""
    assert report(session, "XB", who="fund_xb").scope == ""
    assert "pool" not in [s.key for s in report(session, "XB", who="bank_lyg").sections]
    with pytest.raises(Forbidden):
        report(session, "XB", who="fund_nanjing")


# --- open quarters ----------------------------------------------------------------------------
def test_an_open_quarter_is_reported_as_of_today_and_a_future_one_refused(
    session: Session, book: Book
) -> None:
    doc = report(session, "SKD", today=date(2026, 8, 15))
    assert (doc.meta["closed"], doc.meta["as_of"]) == (False, date(2026, 8, 15))
    icbc = rows(doc, "banks")["ICBC_JS"]
    assert (icbc["claims_filed"], icbc["approved"]) == (0, 0)  # filed on 2026-09-01
    assert icbc["npl"] == 0  # 75 days past due on 2026-08-15
    with pytest.raises(Unprocessable) as refused:
        report(session, "SKD", quarter=4, today=date(2026, 9, 30))
    assert refused.value.code == "quarter_not_begun"


# --- the exposure view ------------------------------------------------------------------------
def test_exposure_shows_the_headroom_if_every_claim_under_review_were_approved(
    session: Session,
) -> None:
    """SKD-Q1: 工商银行's cap 95,736.98 with a claim of 6,400,000.00 under review leaves
    nothing; XB-Q1: the base sub-fund's headroom less the claim under review."""
    icbc_loan = skd_loan(  # SKD2: prior-year revenue 45,000,000.00
        session,
        bank="bank_icbc",
        enterprise_code=member_enterprise(
            session, region="320100", revenue_yuan=45_000_000
        ).credit_code,
        principal_yuan="8000000.00",
        annual_rate_bp=375,
        disbursed=date(2025, 12, 1),
        maturity=date(2026, 6, 1),
        filed_on=date(2025, 12, 3),
    )
    skd_claim(session, loan=icbc_loan, status="city_approved")
    skd = get_program("SKD").exposure(session, "ICBC_JS", on=date(2026, 9, 5))
    out = skd.model_dump(mode="json")  # type: ignore[attr-defined]
    assert (out["cap"], out["headroom"]) == ("95736.98", "95736.98")
    assert (out["under_review"], out["headroom_if_all_approved"]) == ("6400000.00", "0.00")

    loan = xb_loan(
        session, principal_yuan="100000.00", disbursed=date(2025, 7, 4), maturity=date(2026, 1, 5)
    )
    xb_loan(session, principal_yuan="3000000.00", maturity=date(2027, 6, 25))
    claim = xb_claim(session, loan=loan, filed=date(2026, 7, 10))
    xb = get_program("XB").exposure(session, "LYG_RCB", on=date(2026, 7, 20))
    base = xb.model_dump(mode="json")["limit"]  # type: ignore[attr-defined]
    assert base["under_review"] == "80000.00" == f"{claim.requested_fen / 100:.2f}"
    assert base["headroom"] == "155000.00"  # 5 % of 3,100,000.00
    assert base["headroom_if_all_approved"] == "75000.00"
