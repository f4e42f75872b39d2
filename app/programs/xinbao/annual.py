"""信保基金's annual evaluation of each bank (XB-Rep: 第二十一条, due by November 30;
第二十二条's recommendation): volume (all loans, and the base sub-fund 助企成长贷's against
the lending target, this year and the years before), the bank's contribution to the
fund's leverage (XB-F1), overdue and non-performing principal, compensation (approved,
paid; the base sub-fund's against the bank's XB-Q1 limit), collections and what came
back, compliance, and a recommendation — expand, keep, reduce or terminate — with its
reason. The numbers the recommendation reads are `EvaluationPolicy` in
`app/programs/xinbao/policy.py`, with the readings chosen."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.kit.money import format_fen
from app.models import Claim, Loan, QuarterBankResult, QuarterEvaluation
from app.programs.xinbao.claim_steps import last_quarter_end
from app.programs.xinbao.claims import BankLimit
from app.programs.xinbao.limits import percent, settings, sub_fund_expr
from app.programs.xinbao.policy import (
    BASE_SUB_FUND,
    EVALUATION,
    LEVERAGE_TARGET,
    LIMITS,
    POOL,
    PROGRAM_POLICY,
    EvaluationPolicy,
)
from app.reports import bank_books as books
from app.reports.annual import (
    BANK,
    COMPLIANCE,
    VOLUME,
    YEAR_END,
    AnnualFigures,
    AnnualPart,
    bank_cells,
    c,
)
from app.reports.document import Chart, Section, Value

RECOMMENDATIONS = {
    "expand": "增加合作规模",
    "keep": "继续合作",
    "reduce": "减少合作规模",
    "terminate": "终止合作",
}


# --- the recommendation (pure) -----------------------------------------------------------
@dataclass(frozen=True)
class Performance:
    """What 第二十二条 weighs, for one bank and year."""

    year: int
    base_loans: int  # base sub-fund loans disbursed in the year
    base_principal_fen: int  # … and their principal
    earlier_base_principal_fen: tuple[int, ...]  # the years before, the latest first
    npl_ratio_bp: int | None  # None: nothing outstanding
    base_approved_fen: int  # base sub-fund compensation approved in the year
    limit_fen: int  # the XB-Q1 limit in force at the evaluation date

    @property
    def compensation_share_bp(self) -> int | None:
        """The compensation approved as a share of the limit; None without a limit."""
        return books.bp(self.base_approved_fen, self.limit_fen)


def compensation_high(p: Performance, policy: EvaluationPolicy = EVALUATION) -> bool:
    share = p.compensation_share_bp
    if share is None:  # no limit basis: any compensation is beyond it
        return p.base_approved_fen > 0
    return share >= policy.high_compensation_share_bp


def recommend(p: Performance, policy: EvaluationPolicy = EVALUATION) -> tuple[str, str]:
    """第二十二条: (recommendation, reason)."""
    if p.base_loans == 0:
        return "terminate", (
            f"第二十二条: no base sub-fund (助企成长贷) loan disbursed in {p.year} "
            "(“年内未发生基础基金项下贷款业务的，原则上应终止合作”)"
        )
    target = policy.lending_target_fen
    years = [p.base_principal_fen, *p.earlier_base_principal_fen][: policy.target_miss_years]
    met = p.base_principal_fen >= target
    good = p.npl_ratio_bp is None or p.npl_ratio_bp < policy.good_npl_bp
    high = compensation_high(p, policy)
    share = p.compensation_share_bp
    comp = (
        f"compensation {format_fen(p.base_approved_fen)} = "
        + (f"{percent(share)} of the XB-Q1 limit" if share is not None else "with no limit")
        + f" ({'≥' if high else '<'} {percent(policy.high_compensation_share_bp)})"
    )
    lending = (
        f"base lending {format_fen(p.base_principal_fen)} "
        f"{'≥' if met else '<'} target {format_fen(target)}"
    )
    npl = (
        "no principal outstanding"
        if p.npl_ratio_bp is None
        else f"NPL ratio {percent(p.npl_ratio_bp)} "
        f"{'<' if good else '≥'} {percent(policy.good_npl_bp)}"
    )
    missed_all = len(years) == policy.target_miss_years and all(x < target for x in years)
    if missed_all and high:
        first = p.year - policy.target_miss_years + 1
        return "reduce", (
            f"第二十二条 (连续两年达不到放贷目标、补偿率高): base lending below the target "
            f"{format_fen(target)} in each year {first}–{p.year}; {comp}"
        )
    if met and good and not high:
        return (
            "expand",
            f"第二十二条 (达到放贷目标、风控管理好、补偿率低): {lending}; {npl}; {comp}",
        )
    return "keep", f"第二十二条: neither expand nor reduce applies: {lending}; {npl}; {comp}"


# --- the figures -------------------------------------------------------------------------
def _base_lending(
    session: Session, start: date, end: date, cutoff_at: datetime
) -> dict[str, tuple[int, int]]:
    """Per bank, base sub-fund loans disbursed in [start, end]: (count, principal)."""
    rows = session.execute(
        select(Loan.bank_code, func.count(), func.sum(Loan.principal_fen))
        .where(
            Loan.program == PROGRAM_POLICY.code,
            sub_fund_expr() == BASE_SUB_FUND,
            Loan.disbursed_on >= start,
            Loan.disbursed_on <= end,
            Loan.created_at <= cutoff_at,
        )
        .group_by(Loan.bank_code)
    )
    return {str(b): (int(n), int(fen or 0)) for b, n, fen in rows}


def _base_approved(session: Session, start: date, end: date, cutoff_at: datetime) -> dict[str, int]:
    """Per bank, the base sub-fund compensation approved in [start, end] (XB-Q1's use)."""
    steps = books.claim_steps(
        session,
        program=PROGRAM_POLICY.code,
        cutoff_at=cutoff_at,
        statuses=("approved", "closed"),
        since=start,
        until=end,
    )
    out: dict[str, int] = {}
    if not steps:
        return out
    for bank, fen in session.execute(
        select(Claim.bank_code, Claim.approved_fen).where(
            Claim.id.in_([s.claim_id for s in steps]),
            func.coalesce(Claim.fund_code, BASE_SUB_FUND) == BASE_SUB_FUND,
        )
    ):
        out[str(bank)] = out.get(str(bank), 0) + int(fen or 0)
    return out


def _limits(
    session: Session, banks: list[str], on: date, used: dict[str, int], cutoff_at: datetime
) -> dict[str, int]:
    """Per bank, the base sub-fund's XB-Q1 limit in force on `on`: the basis and rate the
    XB quarter-end evaluation of the last quarter end before it stored (the latest run
    by the cut-off), else computed from the loans with the sub-fund's settings."""
    quarter_end = last_quarter_end(on)
    stored: dict[str, QuarterBankResult] = {}
    for result in session.scalars(
        select(QuarterBankResult)
        .join(QuarterEvaluation, QuarterEvaluation.id == QuarterBankResult.evaluation_id)
        .where(
            QuarterEvaluation.program == PROGRAM_POLICY.code,
            QuarterEvaluation.quarter_end == quarter_end,
            QuarterEvaluation.run_at <= cutoff_at,
            QuarterBankResult.fund_code == BASE_SUB_FUND,
        )
        .order_by(QuarterEvaluation.id)
    ):
        stored[result.bank_code] = result  # the latest run wins
    computed: dict[str, books.Position] | None = None
    out = {}
    for bank in banks:
        row = stored.get(bank)
        if row is not None:
            policy = replace(
                LIMITS,
                bank_limit_bp=row.threshold_bp,
                warning_share_bp=row.warning_share_bp or LIMITS.warning_share_bp,
            )
            basis = row.outstanding_fen
        else:
            if computed is None:
                at = books.positions(
                    session, program=PROGRAM_POLICY.code, as_of=quarter_end, cutoff_at=cutoff_at
                )
                computed = {}
                for (b, fund), pos in at.items():
                    if (fund or BASE_SUB_FUND) == BASE_SUB_FUND:
                        computed.setdefault(b, books.Position()).add(pos)
            policy = settings(session, BASE_SUB_FUND)
            basis = computed[bank].outstanding_fen if bank in computed else 0
        limit = BankLimit(quarter_end, basis, used.get(bank, 0), BASE_SUB_FUND, policy)
        out[bank] = limit.limit_fen()
    return out


# --- the part ----------------------------------------------------------------------------
COLUMNS = (
    *BANK,
    *VOLUME,
    c("base_loans", "基础基金投放笔数", "base sub-fund loans disbursed", "int"),
    c("base_principal", "基础基金投放金额", "base sub-fund principal disbursed", "money"),
    c("base_principal_before", "上年基础基金投放金额", "base principal, the year before", "money"),
    c("lending_target", "放贷目标", "lending target", "money"),
    *YEAR_END,
    c("overdue", "逾期贷款本金", "principal in arrears", "money"),
    c("leverage_bp", "放大倍数贡献", "leverage contribution (of the fund's net value)", "bp"),
    c("approved", "年内批准补偿", "compensation approved in the year", "money"),
    c("base_approved", "基础基金批准补偿", "base sub-fund compensation approved", "money"),
    c("limit", "年度补偿限额", "XB-Q1 annual limit", "money"),
    c("compensation_share_bp", "限额使用率", "compensation as a share of the limit", "bp"),
    c("paid", "年内支付补偿", "compensation paid in the year", "money"),
    c("recovered", "银行报告追偿", "collections the bank reported", "money"),
    c("returns", "应返还基金", "returns due to the fund", "money"),
    c("received", "基金已收回", "received by the fund", "money"),
    *COMPLIANCE,
    c("recommendation", "建议", "recommendation"),
    c("recommendation_zh", "建议（中文）", "recommendation (Chinese)"),
    c("reason", "理由", "reason"),
)


def annual_report(session: Session, figures: AnnualFigures) -> AnnualPart:
    """XB-Rep's annual evaluation: one row per bank with its recommendation; the fund's
    leverage beside it (XB-F1) when the whole programme is read."""
    policy, year, on, cutoff = EVALUATION, figures.year, figures.as_of, figures.cutoff_at
    base = _base_lending(session, figures.start, on, cutoff)
    earlier = [
        _base_lending(session, date(y, 1, 1), date(y, 12, 31), cutoff)
        for y in range(year - 1, year - policy.target_miss_years, -1)
    ]
    approved = _base_approved(session, figures.start, on, cutoff)
    limits = _limits(session, list(figures.banks), on, approved, cutoff)
    net_value = books.fund_net_value(session, POOL, as_of=on, cutoff_at=cutoff)
    rows: list[dict[str, Value]] = []
    for code, y in figures.banks.items():
        p = Performance(
            year=year,
            base_loans=base.get(code, (0, 0))[0],
            base_principal_fen=base.get(code, (0, 0))[1],
            earlier_base_principal_fen=tuple(e.get(code, (0, 0))[1] for e in earlier),
            npl_ratio_bp=y.npl_ratio_bp,
            base_approved_fen=approved.get(code, 0),
            limit_fen=limits.get(code, 0),
        )
        what, why = recommend(p, policy)
        rows.append(
            bank_cells(y)
            | {
                "base_loans": p.base_loans,
                "base_principal": p.base_principal_fen,
                "base_principal_before": p.earlier_base_principal_fen[0]
                if p.earlier_base_principal_fen
                else None,
                "lending_target": policy.lending_target_fen,
                "leverage_bp": books.bp(y.position.outstanding_fen, net_value),
                "base_approved": p.base_approved_fen,
                "limit": p.limit_fen,
                "compensation_share_bp": p.compensation_share_bp,
                "recommendation": what,
                "recommendation_zh": RECOMMENDATIONS[what],
                "reason": why,
            }
        )
    due = date(year, policy.due_month, policy.due_day)
    evaluation = Section(
        "evaluation",
        "合作银行年度综合评价",
        "XB-Rep annual evaluation of the banks",
        COLUMNS,
        tuple(rows),
        note=f"XB-Rep (第二十一条, due by {due.isoformat()}; 第二十二条). Figures as of "
        f"{on.isoformat()}. Volume counts every XB loan disbursed in the year; the lending "
        "target and the terminate rule read the base sub-fund 助企成长贷 alone. Leverage "
        "contribution: the bank's XB principal outstanding ÷ the pool's net value "
        "(10,000 bp = 1 ×; XB-F1 targets "
        f"{LEVERAGE_TARGET} × for the fund). Limit: XB-Q1's for the base sub-fund, its "
        "basis the principal at the last quarter end before the evaluation date as the "
        "XB quarter-end evaluation stored it (computed from the loans when none is "
        "stored). Recommendation (EvaluationPolicy): terminate with no base loan in the "
        f"year; reduce when base lending stayed below {format_fen(policy.lending_target_fen)} "
        f"in each of the last {policy.target_miss_years} years and compensation reached "
        f"{percent(policy.high_compensation_share_bp)} of the limit; expand when the target "
        f"is met, the NPL ratio is below {percent(policy.good_npl_bp)} and compensation "
        "is under that share; else keep.",
    )
    sections = [evaluation]
    if figures.scope is None:
        total = sum(y.position.outstanding_fen for y in figures.banks.values())
        sections.append(
            Section(
                "fund",
                "基金放大倍数",
                "the fund's leverage (XB-F1)",
                (
                    c("fund_code", "基金", "fund"),
                    c("net_value", "基金净值", "net value", "money"),
                    c("outstanding", "合作贷款余额", "loans outstanding", "money"),
                    c("leverage_bp", "放大倍数", "leverage", "bp"),
                    c("target_bp", "目标倍数", "target", "bp"),
                ),
                (
                    {
                        "fund_code": POOL,
                        "net_value": net_value,
                        "outstanding": total,
                        "leverage_bp": books.bp(total, net_value),
                        "target_bp": LEVERAGE_TARGET * 10_000,
                    },
                ),
                note="XB-F1 (第三条): XB principal outstanding at the evaluation date ÷ the "
                "pool's net value then (assets less liabilities in its book, entries "
                "recorded by the cut-off), in basis points (10,000 = 1 ×).",
            )
        )
    charts = (
        Chart(
            "compensation_share",
            "补偿限额使用率",
            "compensation as a share of the XB-Q1 limit",
            section="evaluation",
            x="bank_code",
            series=("compensation_share_bp",),
            threshold_bp=policy.high_compensation_share_bp,
        ),
        Chart(
            "npl_ratio",
            "不良贷款率",
            "NPL ratio",
            section="evaluation",
            x="bank_code",
            series=("npl_ratio_bp",),
            threshold_bp=policy.good_npl_bp,
        ),
    )
    return AnnualPart(
        f"{PROGRAM_POLICY.name_zh} {year}年度综合评价",
        f"{PROGRAM_POLICY.name_en}: annual evaluation {year} (XB-Rep)",
        tuple(sections),
        charts,
    )
