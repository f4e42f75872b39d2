"""苏科贷's part of the quarterly report (`app/reports/quarterly.py`): products SKD1/2/3,
the NPL ratio read against SKD-Q3's 3 %, each bank's cumulative compensation rate against
the 3 % cap with its headroom and the first-year exemption (SKD-Q1, SKD-Q2, as
`claim_steps.cap_statistics` works them out, for every bank in one pass), the city funds'
payments, the province's reimbursements (归垫) and the returns (SKD-C1, SKD-R1), and the
ledger lines these reconcile with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import Any

from sqlalchemy import BigInteger, and_, case, cast, func, select
from sqlalchemy.orm import Session

from app.models import Agreement, Claim, ClaimRecovery, ClaimTransition, Fund, Loan, LoanDayTotal
from app.programs.sukedai import claims as rules
from app.programs.sukedai.funds import PROVINCE_FUND
from app.programs.sukedai.policy import CAPS, PRODUCTS, QUARTER_END, product_by_code
from app.reports.document import Chart, Column, Section, Value
from app.reports.quarterly import (
    Extension,
    LedgerLine,
    LedgerSpec,
    Quarter,
    QuarterlyPart,
    loan_days,
    under_review,
)

PROGRAM_CODE = "SKD"
BANK = (Column("bank_code", "银行代码", "bank code"), Column("bank_name", "合作银行", "bank"))


@dataclass(frozen=True)
class BankCap:
    """SKD-Q1 and SKD-Q2 for one bank as of a date."""

    cooperation_start: date | None
    per_product: dict[str, tuple[Fraction, int]]  # product → (annualized, compensated)
    cumulative_principal_fen: int
    position: rules.CapPosition
    under_review_fen: int

    @property
    def annualized(self) -> Fraction:
        return sum((a for a, _ in self.per_product.values()), Fraction(0))

    @property
    def compensated_fen(self) -> int:
        return sum(c for _, c in self.per_product.values())

    @property
    def headroom_if_approved_fen(self) -> int | None:
        """The headroom left if every claim under review were approved in full."""
        headroom = self.position.headroom_fen
        return None if headroom is None else max(headroom - self.under_review_fen, 0)


def rate_bp(compensated: int, annualized: Fraction) -> int | None:
    """Compensation ÷ annualized principal in basis points, rounded down."""
    if not annualized:
        return None
    return (Fraction(compensated) * 10_000 / annualized).__floor__()


def bank_caps(q: Quarter, banks: list[str]) -> dict[str, BankCap]:
    """SKD-Q1/Q2 per bank as of the report's date, from rows recorded by its cut-off:
    the annualized principal of the bank's loans disbursed from its cooperation start
    (its earliest SKD agreement) on, per product (day totals, less the loans recorded
    after the cut-off), the compensation approved by then, the cap, the headroom and the
    exemption; and what the bank's claims under review would take. The cap is the bank's
    whatever the caller's scope."""
    session, cut, on = q.session, q.cut, q.as_of
    if not banks:
        return {}
    starts = (
        select(Agreement.bank_code.label("bank"), func.min(Agreement.start_on).label("start"))
        .where(
            Agreement.program == PROGRAM_CODE,
            Agreement.bank_code.in_(banks),
            cut.by(Agreement),
        )
        .group_by(Agreement.bank_code)
        .subquery()
    )
    start_of = {str(b): s for b, s in session.execute(select(starts.c.bank, starts.c.start))}
    sums: dict[tuple[str, str], list[int]] = {}
    lent = (
        select(
            LoanDayTotal.bank_code,
            LoanDayTotal.product,
            func.sum(LoanDayTotal.disbursed_fen),
            func.sum(LoanDayTotal.disbursed_days_fen),
        )
        .join(starts, starts.c.bank == LoanDayTotal.bank_code)
        .where(
            LoanDayTotal.program == PROGRAM_CODE,
            LoanDayTotal.day >= starts.c.start,
            LoanDayTotal.day <= on,
        )
        .group_by(LoanDayTotal.bank_code, LoanDayTotal.product)
    )
    product = func.coalesce(Loan.product, "")
    late = (
        select(
            Loan.bank_code,
            product,
            -func.sum(Loan.principal_fen),
            -func.sum(cast(Loan.principal_fen, BigInteger) * loan_days(session)),
        )
        .join(starts, starts.c.bank == Loan.bank_code)
        .where(
            Loan.program == PROGRAM_CODE,
            cut.after(Loan),
            Loan.disbursed_on >= starts.c.start,
            Loan.disbursed_on <= on,
        )
        .group_by(Loan.bank_code, product)
    )
    for stmt in (lent, late):
        for bank, code, principal, days in session.execute(stmt):
            got = sums.setdefault((str(bank), str(code or "")), [0, 0])
            got[0] += int(principal or 0)
            got[1] += int(days or 0)
    approvals = q.approvals(None, on)
    compensated: dict[tuple[str, str], int] = {
        (str(b), str(p or "")): int(fen or 0)
        for b, p, fen in session.execute(
            select(Claim.bank_code, Claim.product, func.sum(Claim.approved_fen))
            .join(approvals, approvals.c.claim_id == Claim.id)
            .where(Claim.program == PROGRAM_CODE, Claim.bank_code.in_(banks), cut.by(Claim))
            .group_by(Claim.bank_code, Claim.product)
        )
    }
    waiting: dict[str, int] = {}
    for (bank, _), fen in under_review(
        session, PROGRAM_CODE, on, bank_code=q.scope.bank_code, cutoff_at=q.cutoff_at
    ).items():
        waiting[bank] = waiting.get(bank, 0) + fen
    out = {}
    for bank in banks:
        per_product = {
            p.code: (
                rules.annualized(
                    sums.get((bank, p.code), [0, 0])[1], p.province_share_bp + p.city_share_bp
                ),
                compensated.get((bank, p.code), 0),
            )
            for p in PRODUCTS
        }
        cumulative = sum(v[0] for (b, p), v in sums.items() if b == bank and product_by_code(p))
        annualized = sum((a for a, _ in per_product.values()), Fraction(0))
        position = rules.cap_position(
            rules.CapFacts(
                cooperation_start=start_of.get(bank),
                on=on,
                cumulative_principal_fen=cumulative,
                annualized_fen=annualized,
                compensated_fen=sum(c for _, c in per_product.values()),
            ),
            CAPS,
        )
        out[bank] = BankCap(
            start_of.get(bank), per_product, cumulative, position, waiting.get(bank, 0)
        )
    return out


CAP_COLUMNS = (
    *BANK,
    Column("cooperation_start", "合作起始日", "cooperation start", "date"),
    Column("first_year_ends", "合作首年届满", "first cooperation year ends", "date"),
    Column("exempt", "首年豁免", "first-year exemption applies (SKD-Q2)", "bool"),
    Column("cumulative_principal", "累计贷款本金", "cumulative principal", "money"),
    Column("annualized_principal", "累计年化本金", "annualized principal (SKD-Q1)", "money"),
    Column("compensated", "累计代偿", "compensation approved to date", "money"),
    Column("compensation_rate_bp", "代偿率", "compensation rate", "bp"),
    Column("cap_rate_bp", "补偿上限比例", "cap rate", "bp"),
    Column("cap", "补偿上限", "cap", "money"),
    Column("headroom", "剩余额度", "headroom", "money"),
    Column("under_review", "在审代偿申请", "claims under review (funds' share)", "money"),
    Column(
        "headroom_if_approved",
        "在审全部批准后剩余额度",
        "headroom if every claim under review were approved",
        "money",
    ),
)
CAP_PRODUCT_COLUMNS = (
    *BANK,
    Column("product", "产品", "product"),
    Column("annualized_principal", "累计年化本金", "annualized principal", "money"),
    Column("compensated", "累计代偿", "compensation approved to date", "money"),
    Column("compensation_rate_bp", "代偿率", "compensation rate", "bp"),
)
FUND_COLUMNS = (
    Column("fund_code", "资金代码", "fund code"),
    Column("fund_name", "市县风险补偿资金", "city or county fund"),
    Column("approved", "批准代偿", "compensation approved", "money"),
    Column("paid", "拨付银行", "paid to banks", "money"),
    Column("reimbursed", "省级归垫", "reimbursed by the province", "money"),
    Column("returned", "追偿返还", "returned by banks", "money"),
    Column("passed_on", "返还省级", "passed on to the province", "money"),
)


class SukedaiQuarter(QuarterlyPart):
    npl_threshold_bp = QUARTER_END.threshold_bp  # SKD-Q3
    npl_rule = "SKD-Q3"

    def extend(self, session: Session, q: Quarter) -> Extension:
        banks = list(q.bank_rows)
        caps = bank_caps(q, banks)
        cap_rows: list[dict[str, Value]] = []
        product_rows: list[dict[str, Value]] = []
        for bank, c in caps.items():
            cap_rows.append(
                {
                    "bank_code": bank,
                    "bank_name": q.bank_name(bank),
                    "cooperation_start": c.cooperation_start,
                    "first_year_ends": c.position.first_year_ends,
                    "exempt": c.position.exempt,
                    "cumulative_principal": c.cumulative_principal_fen,
                    "annualized_principal": c.annualized.__floor__(),
                    "compensated": c.compensated_fen,
                    "compensation_rate_bp": rate_bp(c.compensated_fen, c.annualized),
                    "cap_rate_bp": CAPS.rate_bp,
                    "cap": c.position.cap_fen,
                    "headroom": c.position.headroom_fen,
                    "under_review": c.under_review_fen,
                    "headroom_if_approved": c.headroom_if_approved_fen,
                }
            )
            product_rows += [
                {
                    "bank_code": bank,
                    "bank_name": q.bank_name(bank),
                    "product": product,
                    "annualized_principal": annualized.__floor__(),
                    "compensated": compensated,
                    "compensation_rate_bp": rate_bp(compensated, annualized),
                }
                for product, (annualized, compensated) in c.per_product.items()
                if annualized or compensated
            ]
        funds = city_funds(q)
        reimbursed = sum(f["reimbursed"] for f in funds.values())
        passed_on = sum(f["passed_on"] for f in funds.values())
        names = dict(
            session.execute(select(Fund.code, Fund.name).where(Fund.code.in_(funds))).all()
        )
        fund_rows: tuple[dict[str, Value], ...] = tuple(
            {"fund_code": code, "fund_name": names.get(code, code), **figures}
            for code, figures in funds.items()
        )
        return Extension(
            sections=(
                Section(
                    "caps",
                    "补偿上限（SKD-Q1、Q2）",
                    "Compensation cap (SKD-Q1, Q2)",
                    CAP_COLUMNS,
                    tuple(cap_rows),
                    note="Per bank as of the quarter end, the bank's whole SKD business "
                    "whatever the caller's scope (the cap is the bank's, SKD-Q1): the "
                    "annualized principal Σ principal × contractual days / 365 × the funds' "
                    "share of the loans disbursed from the bank's earliest SKD agreement on "
                    "(loans recorded by the cut-off), the compensation approved by then "
                    "(approvals recorded by the cut-off), the rate against the 3 % cap and "
                    "the headroom left; during the first 12 months of cooperation and up "
                    "to 200,000,000 of principal SKD-Q2 exempts the bank (no cap, no "
                    "headroom). Under review: the funds' share requested by the bank's "
                    "claims filed and not yet decided at the quarter end; the headroom "
                    "left if all of them were approved in full.",
                ),
                Section(
                    "cap_products",
                    "补偿上限分产品统计",
                    "Compensation cap per product (statistics)",
                    CAP_PRODUCT_COLUMNS,
                    tuple(product_rows),
                    note="SKD-Q1's figures per SKD1, SKD2, SKD3 (分类统计): the cap applies "
                    "to the bank's total in `caps`.",
                ),
                Section(
                    "city_funds",
                    "市县资金拨付、归垫与返还",
                    "City funds: payments, reimbursements and returns",
                    FUND_COLUMNS,
                    fund_rows,
                    note="Per city or county fund, the claims in scope in the quarter "
                    "(SKD-C1, SKD-R1): approved (approval date), paid to the bank by the "
                    "city fund (payment date), the province's part reimbursed to the city "
                    "fund (归垫, its date), recoveries returned by the banks to the city "
                    "fund (recovery date) and the province's part of them passed on; each "
                    "step recorded by the cut-off.",
                ),
            ),
            charts=(
                Chart(
                    "compensation_rate",
                    "各合作银行累计代偿率",
                    "Cumulative compensation rate per bank (SKD-Q1)",
                    section="caps",
                    x="bank_code",
                    series=("compensation_rate_bp",),
                    threshold_bp=CAPS.rate_bp,
                ),
            ),
            ledger=(
                LedgerLine(
                    "approved",
                    "批准代偿（代偿支出）",
                    "compensation approved (compensation expense)",
                    q.totals["approved"],
                    LedgerSpec(kinds=("compensation_expense",), event_types=("claim.approved",)),
                ),
                LedgerLine(
                    "paid",
                    "市县资金拨付银行（应付银行代偿款）",
                    "compensation paid by the city funds (payable to banks)",
                    q.totals["paid"],
                    LedgerSpec(kinds=("payable_bank",), event_types=("claim.city_payment",)),
                ),
                LedgerLine(
                    "reimbursed",
                    "省级归垫（应付其他资金）",
                    "reimbursed by the province (due to the city funds)",
                    reimbursed,
                    LedgerSpec(
                        kinds=("due_to_fund",),
                        event_types=("claim.province_reimbursement",),
                        funds=(PROVINCE_FUND,),
                    ),
                ),
                LedgerLine(
                    "returned",
                    "追偿返还（追偿返还收入）",
                    "returns of recoveries (recovery income)",
                    q.totals["returned"],
                    LedgerSpec(
                        kinds=("recovery_income",), event_types=("claim.recovery",), credit=True
                    ),
                ),
                LedgerLine(
                    "passed_on",
                    "返还省级部分",
                    "the province's part of returns passed on",
                    passed_on,
                    LedgerSpec(kinds=("due_to_fund",), event_types=("claim.recovery_pass_on",)),
                ),
            ),
        )


def city_funds(q: Quarter) -> dict[str, dict[str, int]]:
    """Per city fund, the quarter's money of the claims in scope (SKD-C1, SKD-R1)."""
    session, t = q.session, ClaimTransition
    scoped = q.claims_in_scope()
    within = and_(t.business_date >= q.start, t.business_date <= q.as_of, q.cut.by(t))
    province = cast(Claim.approved_shares["province"].as_string(), BigInteger)

    def when(status: str, value: Any) -> Any:
        return func.coalesce(func.sum(case((t.to_status == status, value), else_=0)), 0)

    figures: dict[str, dict[str, int]] = {}
    approval = t.to_status.in_(("approved", "closed"))
    for fund, approved, paid, reimbursed in session.execute(
        select(
            Claim.city_fund_code,
            func.coalesce(func.sum(case((approval, Claim.approved_fen), else_=0)), 0),
            when("paid", Claim.approved_fen),
            when("reimbursed", province),
        )
        .select_from(t)
        .join(Claim, Claim.id == t.claim_id)
        .where(*scoped, within, t.to_status.in_(("approved", "closed", "paid", "reimbursed")))
        .group_by(Claim.city_fund_code)
    ):
        figures[str(fund)] = {
            "approved": int(approved),
            "paid": int(paid),
            "reimbursed": int(reimbursed),
        }
    r = ClaimRecovery
    for fund, returned, passed_on in session.execute(
        select(
            Claim.city_fund_code,
            func.sum(r.returned_fen),
            func.sum(cast(r.returned_shares["province"].as_string(), BigInteger)),
        )
        .join(Claim, Claim.id == r.claim_id)
        .where(*scoped, r.recovered_on >= q.start, r.recovered_on <= q.as_of, q.cut.by(r))
        .group_by(Claim.city_fund_code)
    ):
        got = figures.setdefault(str(fund), {"approved": 0, "paid": 0, "reimbursed": 0})
        got["returned"] = int(returned or 0)
        got["passed_on"] = int(passed_on or 0)
    keys = ("approved", "paid", "reimbursed", "returned", "passed_on")
    return {fund: {k: f.get(k, 0) for k in keys} for fund, f in sorted(figures.items())}


PART = SukedaiQuarter()
