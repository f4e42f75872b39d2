"""信保基金's part of the quarterly report (`app/reports/quarterly.py`): products per
sub-fund and security (credit, guaranteed), each bank's annual limit per sub-fund with
its use and the 50 % warning (XB-Q1, as `limits.bank_limit` reads it, for every bank in
one pass), the fund-wide compensation against 50 % of the capital paid in (XB-Q2), the
pool's net value and leverage (XB-F1), and the ledger lines these reconcile with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app.kit.money import format_fen
from app.models import (
    Agreement,
    Claim,
    Fund,
    FundEvent,
    Loan,
    LoanDayTotal,
    QuarterBankResult,
    QuarterEvaluation,
)
from app.programs.xinbao.claim_steps import last_quarter_end
from app.programs.xinbao.claims import fund_stop_reached
from app.programs.xinbao.limits import percent
from app.programs.xinbao.policy import (
    BASE_SUB_FUND,
    LEVERAGE_TARGET,
    LIMITS,
    POOL,
    REPORT_DAY,
    REPORT_TO,
    LimitPolicy,
    limit_policy,
)
from app.reports.document import Chart, Column, Section, Value
from app.reports.quarterly import (
    Extension,
    LedgerLine,
    LedgerSpec,
    Quarter,
    QuarterlyPart,
    balance,
    outstanding,
    under_review,
)

PROGRAM_CODE = "XB"
# XB-Rep reading: XB's rules act on no NPL ratio; the quarterly report reads its NPL
# ratio against the same 3 % line as SKD-Q3, for comparison only
NPL_REFERENCE_BP = 300
BANK = (Column("bank_code", "银行代码", "bank code"), Column("bank_name", "合作银行", "bank"))


@dataclass(frozen=True)
class LimitRow:
    """XB-Q1 for one bank and sub-fund on the report's date."""

    bank: str
    fund: str
    quarter_end: date
    basis_fen: int
    source: str  # evaluation <id> | computed
    policy: LimitPolicy
    used_fen: int
    under_review_fen: int

    @property
    def limit_fen(self) -> int:
        return self.basis_fen * self.policy.bank_limit_bp // 10_000

    @property
    def warning_fen(self) -> int:
        return self.limit_fen * self.policy.warning_share_bp // 10_000

    @property
    def headroom_fen(self) -> int:
        return max(self.limit_fen - self.used_fen, 0)

    @property
    def warning(self) -> bool:
        return self.limit_fen > 0 and self.used_fen >= self.warning_fen

    @property
    def reached(self) -> bool:
        return self.limit_fen > 0 and self.used_fen >= self.limit_fen


def bank_limits(q: Quarter) -> list[LimitRow]:
    """XB-Q1 per bank and sub-fund in scope as of the report's date: the basis at the
    last quarter end before it, as stored by the latest XB quarter-end evaluation of that
    quarter end recorded by the cut-off (its settings too), or computed from the books
    with the sub-fund's current settings where none was stored; the compensation approved
    under the sub-fund in the calendar year up to the date; the claims under review."""
    session, cut, on = q.session, q.cut, q.as_of
    basis_end = last_quarter_end(on)
    evaluation = session.scalar(
        select(func.max(QuarterEvaluation.id)).where(
            QuarterEvaluation.program == PROGRAM_CODE,
            QuarterEvaluation.quarter_end == basis_end,
            cut.by(QuarterEvaluation),
        )
    )
    stored: dict[tuple[str, str], QuarterBankResult] = {}
    if evaluation is not None:
        r = QuarterBankResult
        found = select(r).where(r.evaluation_id == evaluation, r.fund_code.is_not(None))
        if q.scope.bank_code is not None:
            found = found.where(r.bank_code == q.scope.bank_code)
        if q.scope.funds is not None:
            found = found.where(r.fund_code.in_(q.scope.funds))
        stored = {(row.bank_code, str(row.fund_code)): row for row in session.scalars(found)}
    computed: dict[tuple[str, str], int] = {}
    for (bank, fund), fen in outstanding(q, basis_end, by="fund").items():
        key = (bank, fund or BASE_SUB_FUND)
        computed[key] = computed.get(key, 0) + fen
    approvals = q.approvals(date(on.year, 1, 1), on)
    used = {
        (str(b), str(f or BASE_SUB_FUND)): int(fen or 0)
        for b, f, fen in session.execute(
            select(Claim.bank_code, Claim.fund_code, func.sum(Claim.approved_fen))
            .join(approvals, approvals.c.claim_id == Claim.id)
            .where(*q.claims_in_scope())
            .group_by(Claim.bank_code, Claim.fund_code)
        )
    }
    waiting = {
        (b, f or BASE_SUB_FUND): fen
        for (b, f), fen in under_review(
            session, PROGRAM_CODE, on, bank_code=q.scope.bank_code, cutoff_at=q.cutoff_at
        ).items()
        if q.scope.funds is None or (f or BASE_SUB_FUND) in q.scope.funds
    }
    agreed = {
        (str(b), str(f))
        for b, f in session.execute(
            select(Agreement.bank_code, Agreement.fund_code).where(
                Agreement.program == PROGRAM_CODE, cut.by(Agreement), *q.scope.agreements()
            )
        )
    }
    pairs = sorted(
        agreed | set(stored) | {k for k, v in computed.items() if v > 0} | set(used) | set(waiting),
        key=lambda k: (k[0], k[1] != BASE_SUB_FUND, k[1]),
    )
    params: dict[str, dict[str, Any]] = dict(
        session.execute(
            select(Fund.code, Fund.params).where(Fund.code.in_({f for _, f in pairs}))
        ).all()
    )
    out = []
    for bank, fund in pairs:
        row = stored.get((bank, fund))
        if row is not None:
            policy = LimitPolicy(
                bank_limit_bp=row.threshold_bp,
                warning_share_bp=row.warning_share_bp
                if row.warning_share_bp is not None
                else LIMITS.warning_share_bp,
                fund_stop_share_bp=LIMITS.fund_stop_share_bp,
            )
            basis, source = row.outstanding_fen, f"evaluation {row.evaluation_id}"
        else:
            policy = limit_policy(params.get(fund))
            basis, source = computed.get((bank, fund), 0), "computed"
        out.append(
            LimitRow(
                bank,
                fund,
                basis_end,
                basis,
                source,
                policy,
                used.get((bank, fund), 0),
                waiting.get((bank, fund), 0),
            )
        )
    return out


LIMIT_COLUMNS = (
    *BANK,
    Column("fund_code", "子基金", "sub-fund"),
    Column("label", "银行·子基金", "bank · sub-fund"),
    Column("quarter_end", "限额基数季末", "basis quarter end", "date"),
    Column("basis_source", "基数来源", "basis from"),
    Column("basis", "季末贷款余额（基数）", "principal at that quarter end (basis)", "money"),
    Column("limit_rate_bp", "限额比例", "limit rate", "bp"),
    Column("annual_limit", "年度补偿限额", "annual limit", "money"),
    Column("warning_share_bp", "预警比例", "warning share", "bp"),
    Column("warning_at", "预警额", "warning at", "money"),
    Column("used", "本年已补偿", "compensation approved this year", "money"),
    Column("usage_bp", "限额使用率", "share of the limit used", "bp"),
    Column("headroom", "剩余额度", "headroom", "money"),
    Column("under_review", "在审补偿申请", "claims under review (fund's share)", "money"),
    Column(
        "headroom_if_approved",
        "在审全部批准后剩余额度",
        "headroom if every claim under review were approved",
        "money",
    ),
    Column("warning", "风险预警", "risk warning", "bool"),
    Column("limit_reached", "达到限额", "limit reached", "bool"),
)
POOL_COLUMNS = (
    Column("fund_code", "基金", "fund"),
    Column("capital_paid_in", "实缴基金总额", "capital paid in", "money"),
    Column("compensated", "累计补偿", "compensation approved to date", "money"),
    Column("usage_bp", "补偿占基金总额", "compensation ÷ capital", "bp"),
    Column("stop_share_bp", "暂停新增业务比例", "new business stops at", "bp"),
    Column("stop_reached", "达到暂停比例", "stop share reached (XB-Q2)", "bool"),
    Column("stopped", "已暂停新增业务", "new business stopped", "bool"),
    Column("net_value", "基金净值", "net value", "money"),
    Column("loans_outstanding", "贷款余额", "loans outstanding under the fund", "money"),
    Column("leverage_bp", "放大倍数", "leverage (loans ÷ net value)", "bp"),
    Column("leverage_target_bp", "目标放大倍数", "leverage target (XB-F1)", "bp"),
)


class XinbaoQuarter(QuarterlyPart):
    npl_threshold_bp = NPL_REFERENCE_BP
    npl_rule = "reference line, XB-Rep"
    # XB-Rep (第二十一条): the fund manager reports the quarter to the 领导小组办公室 by
    # Jan 15 / Apr 15 / Jul 15 / Oct 15
    submission_day = REPORT_DAY
    submitted_to = REPORT_TO

    def loan_product(self) -> ColumnElement[str]:
        """Sub-fund and security: `XB_ZQCZD · credit`."""
        return func.coalesce(Loan.fund_code, BASE_SUB_FUND) + " · " + Loan.security

    def day_total_product(self) -> ColumnElement[str] | None:
        """The same over `loan_day_totals` (keyed by fund and security; "" for a loan
        without a fund)."""
        fund = func.coalesce(func.nullif(LoanDayTotal.fund_code, ""), BASE_SUB_FUND)
        return fund + " · " + LoanDayTotal.security

    def extend(self, session: Session, q: Quarter) -> Extension:
        limits = bank_limits(q)
        rows: list[dict[str, Value]] = []
        notices: list[dict[str, Value]] = []
        for x in limits:
            headroom = x.headroom_fen
            rows.append(
                {
                    "bank_code": x.bank,
                    "bank_name": q.bank_name(x.bank),
                    "fund_code": x.fund,
                    "label": f"{x.bank} · {x.fund}",
                    "quarter_end": x.quarter_end,
                    "basis_source": x.source,
                    "basis": x.basis_fen,
                    "limit_rate_bp": x.policy.bank_limit_bp,
                    "annual_limit": x.limit_fen,
                    "warning_share_bp": x.policy.warning_share_bp,
                    "warning_at": x.warning_fen,
                    "used": x.used_fen,
                    "usage_bp": x.used_fen * 10_000 // x.limit_fen if x.limit_fen else None,
                    "headroom": headroom,
                    "under_review": x.under_review_fen,
                    "headroom_if_approved": max(headroom - x.under_review_fen, 0),
                    "warning": x.warning,
                    "limit_reached": x.reached,
                }
            )
            if x.warning:
                what = "reached" if x.reached else f"{percent(x.policy.warning_share_bp)} used"
                notices.append(
                    {
                        "bank_code": x.bank,
                        "bank_name": q.bank_name(x.bank),
                        "kind": "limit_reached" if x.reached else "limit_warning",
                        "agreement_id": None,
                        "fund_code": x.fund,
                        "since": None,
                        "reason": f"XB-Q1: the annual limit under {x.fund} is {what} "
                        f"({format_fen(x.used_fen)} of {format_fen(x.limit_fen)} in "
                        f"{q.as_of.year})",
                    }
                )
        sections = [
            Section(
                "caps",
                "年度补偿限额（XB-Q1）",
                "Annual compensation limits (XB-Q1)",
                LIMIT_COLUMNS,
                tuple(rows),
                note="Per bank and sub-fund as of the quarter end: the basis is the bank's "
                "principal under the sub-fund at the last quarter end before it, as stored "
                "by the XB quarter-end evaluation of that quarter end (the latest recorded "
                "by the cut-off, with the settings it stored), else computed from the books "
                "with the sub-fund's settings; the limit (base sub-fund 5 %), the warning "
                "at 50 % of it, the compensation approved under the sub-fund in the "
                "calendar year (approvals recorded by the cut-off), the headroom, and the "
                "headroom left if every claim under review were approved (XB-Q1).",
            )
        ]
        ledger = [
            LedgerLine(
                "approved",
                "批准补偿（代偿支出）",
                "compensation approved (compensation expense)",
                q.totals["approved"],
                LedgerSpec(kinds=("compensation_expense",), event_types=("claim.approved",)),
            ),
            LedgerLine(
                "paid",
                "支付补偿（应付银行代偿款）",
                "compensation paid (payable to banks)",
                q.totals["paid"],
                LedgerSpec(kinds=("payable_bank",), event_types=("claim.payment",)),
            ),
            LedgerLine(
                "returned",
                "催收分配应收（追偿返还收入）",
                "collections due to the fund (recovery income)",
                q.totals["returned"],
                LedgerSpec(
                    kinds=("recovery_income",), event_types=("claim.recovery",), credit=True
                ),
            ),
            LedgerLine(
                "refunds",
                "代偿退回（XB-R2）",
                "compensation refunds due (XB-R2)",
                q.totals["refunds"],
                LedgerSpec(
                    kinds=("compensation_refunds",),
                    event_types=("claim.abandonment_refund", "claim.fraud_refund"),
                    credit=True,
                ),
            ),
            LedgerLine(
                "received",
                "收到银行返还（应收银行返还款）",
                "received from banks (receivable from banks)",
                q.totals["received"],
                LedgerSpec(kinds=("receivable_bank",), event_types=("claim.receipt",), credit=True),
            ),
        ]
        if q.scope.whole:
            sections.append(pool_section(q))
        return Extension(
            sections=tuple(sections),
            charts=(
                Chart(
                    "limit_usage",
                    "各合作银行年度补偿限额使用率",
                    "Annual limit used per bank and sub-fund (XB-Q1)",
                    section="caps",
                    x="label",
                    series=("usage_bp",),
                    threshold_bp=LIMITS.warning_share_bp,
                ),
            ),
            notices=tuple(notices),
            ledger=tuple(ledger),
        )


def pool_section(q: Quarter) -> Section:
    """XB-Q2 and XB-F1 for the pool as of the report's date (the whole programme only)."""
    session = q.session
    capital = -balance(q, fund=POOL, kinds=("contributed_capital",))
    approvals = q.approvals(None, q.as_of)
    compensated = int(
        session.scalar(
            select(func.coalesce(func.sum(Claim.approved_fen), 0))
            .join(approvals, approvals.c.claim_id == Claim.id)
            .where(Claim.program == PROGRAM_CODE, q.cut.by(Claim))
        )
        or 0
    )
    last = session.scalars(
        select(FundEvent.to_status)
        .where(FundEvent.fund_code == POOL, q.cut.by(FundEvent))
        .order_by(FundEvent.id.desc())
        .limit(1)
    ).first()
    net = balance(q, fund=POOL, types=("asset", "liability"))
    loans = q.totals["outstanding"]
    row: dict[str, Value] = {
        "fund_code": POOL,
        "capital_paid_in": capital,
        "compensated": compensated,
        "usage_bp": compensated * 10_000 // capital if capital > 0 else None,
        "stop_share_bp": LIMITS.fund_stop_share_bp,
        "stop_reached": fund_stop_reached(compensated, capital),
        "stopped": last == "stopped",
        "net_value": net,
        "loans_outstanding": loans,
        "leverage_bp": loans * 10_000 // net if net > 0 else None,
        "leverage_target_bp": LEVERAGE_TARGET * 10_000,
    }
    return Section(
        "pool",
        "基金池运行（XB-Q2、XB-F1）",
        "The pool: fund-wide compensation and leverage (XB-Q2, XB-F1)",
        POOL_COLUMNS,
        (row,),
        note="As of the quarter end, from entries recorded by the cut-off: the capital "
        "paid in (the credit balance of the contributors' capital accounts), the "
        "compensation approved to date against 50 % of it (XB-Q2: new business stops; "
        "read against the capital paid in), whether new business stood stopped at the "
        "cut-off (fund_events.at), the net value (assets less liabilities, memo accounts "
        "aside) and the loans outstanding under the fund against 10 × the net value "
        "(XB-F1; leverage in basis points: 100000 is 10 ×).",
    )


PART = XinbaoQuarter()
