"""The monthly report of one bank in one programme (XB-Rep; the SKD banks' month too),
with the SKD-R2 台账 reconciliation: the funds' ledger beside what the bank reported.

Sections, each a table (`app.reports.document`), all from rows recorded by the cut-off:
- `filings`: the month's filings (filing date in the month) per product — or, for a
  programme without products, per security — and in total: loans, principal,
  enterprises, of which filed late;
- `repayments`: principal repaid in cash, principal settled by a renewal (SKD-F7) and
  interest paid, dated in the month;
- `arrears`: the bank's loans owing principal at the month end per delinquency bucket of
  the programme (SPEC M-6, `dpd_buckets`, days by its NPL rule, the worse view);
- `claims`: claims filed (their requested amounts), approved (approved amounts), capped
  (by how much), paid to the bank and rejected (requested amounts), by the date of the
  step in the month;
- `recoveries`: collections the bank reported in the month, their costs, the returns
  they made due, the returns and refunds the funds received (the ledger) and the refunds
  decided (XB-R2);
- `status_file`: the bank's loan-level status file for the month (XB-Rep): its latest
  version recorded by the cut-off, due date, whether late, its rows and differences —
  or `missing` / `not_yet_due` / `not_expected`; `status_differences_by_kind` and
  `status_differences`: its differences, those of this programme's loans and contracts
  the service does not know;
- `ledger_reconciliation` (SKD-R2): per claim compensated, the ledger's payment to the
  bank beside the claim's record, the collections and returns the bank reported beside
  the ledger's returns due and received; `ledger_differences`: every difference, each
  with what it compares."""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import NotFound, ValidationFailed
from app.kit.clock import CHINA_TZ
from app.models import (
    Bank,
    Claim,
    ClaimClawback,
    ClaimRecovery,
    Loan,
    LoanInterestPayment,
    LoanRepayment,
    StatusReport,
    StatusReportDifference,
)
from app.programs.base import Program, get_program, is_late_filing_flag
from app.reports import bank_books as books
from app.reports.document import Column, ReportDocument, Section, Value
from app.status_reports import service as status_files


def _c(key: str, zh: str, en: str, kind: str = "text") -> Column:
    return Column(key, zh, en, kind)  # type: ignore[arg-type]


Rows = tuple[dict[str, Value], ...]
TOTAL = "total"


# --- the month's flows ---------------------------------------------------------------------
def _line(product: str | None, security: str) -> str:
    return product or security


def filings(
    session: Session, program: Program, bank: str, start: date, end: date, cutoff: datetime
) -> Section:
    rows = session.execute(
        select(
            Loan.product,
            Loan.security,
            Loan.principal_fen,
            Loan.enterprise_id,
            Loan.filed_late,
            Loan.flags,
        ).where(
            Loan.program == program.code,
            Loan.bank_code == bank,
            Loan.filed_on >= start,
            Loan.filed_on <= end,
            Loan.created_at <= cutoff,
        )
    ).all()
    lines: dict[str, list[Any]] = defaultdict(lambda: [0, 0, set(), 0])
    for product, security, principal, enterprise, late, flags in rows:
        found_late = late or any(is_late_filing_flag(program.policy, f) for f in flags or [])
        for key in (_line(product, security), TOTAL):
            cell = lines[key]
            cell[0] += 1
            cell[1] += int(principal)
            cell[2].add(int(enterprise))
            cell[3] += int(found_late)
    lines.setdefault(TOTAL, [0, 0, set(), 0])
    out: Rows = tuple(
        {
            "line": key,
            "loans": n,
            "principal": fen,
            "enterprises": len(ents),
            "filed_late": late_n,
        }
        for key, (n, fen, ents, late_n) in sorted(lines.items(), key=lambda kv: kv[0] == TOTAL)
    )
    return Section(
        "filings",
        "本月备案",
        "filings of the month",
        (
            _c("line", "产品/方式", "product or security"),
            _c("loans", "备案笔数", "loans filed", "int"),
            _c("principal", "备案金额", "principal filed", "money"),
            _c("enterprises", "企业数", "enterprises", "int"),
            _c("filed_late", "逾期备案", "filed late", "int"),
        ),
        out,
        note="Loans the bank filed with a filing date in the month, per product (per "
        "security where the programme has no products) and in total. Filed late: "
        "`filed_late`, or found late when a calendar year was published.",
    )


def repayments(
    session: Session, program: Program, bank: str, start: date, end: date, cutoff: datetime
) -> Section:
    lines: dict[str, list[Any]] = defaultdict(lambda: [set(), 0, 0, 0])
    for table, column in (
        (LoanRepayment, LoanRepayment.principal_fen),
        (LoanInterestPayment, LoanInterestPayment.interest_fen),
    ):
        cols: list[Any] = [Loan.id, Loan.product, Loan.security, column]
        if table is LoanRepayment:
            cols.append(LoanRepayment.kind)
        for r in session.execute(
            select(*cols)
            .join(Loan, Loan.id == table.loan_id)
            .where(
                Loan.program == program.code,
                Loan.bank_code == bank,
                Loan.created_at <= cutoff,
                table.paid_on >= start,
                table.paid_on <= end,
                table.created_at <= cutoff,
            )
        ):
            slot = 3 if table is LoanInterestPayment else (2 if r[4] == "renewal" else 1)
            for key in (_line(r[1], r[2]), TOTAL):
                lines[key][0].add(int(r[0]))
                lines[key][slot] += int(r[3])
    lines.setdefault(TOTAL, [set(), 0, 0, 0])
    out: Rows = tuple(
        {
            "line": key,
            "loans": len(ids),
            "principal": cash,
            "principal_renewed": renewed,
            "interest": interest,
        }
        for key, (ids, cash, renewed, interest) in sorted(
            lines.items(), key=lambda kv: kv[0] == TOTAL
        )
    )
    return Section(
        "repayments",
        "本月还款",
        "repayments of the month",
        (
            _c("line", "产品/方式", "product or security"),
            _c("loans", "还款贷款笔数", "loans with a payment", "int"),
            _c("principal", "归还本金", "principal repaid", "money"),
            _c("principal_renewed", "续贷结清本金", "principal settled by a renewal", "money"),
            _c("interest", "支付利息", "interest paid", "money"),
        ),
        out,
        note="Payments the bank reported dated in the month (SPEC M-6): principal in cash, "
        "principal closed by a renewal (SKD-F7) and interest.",
    )


def arrears(position: books.Position, program: Program, end: date) -> Section:
    rule = program.policy.arrears_rule("npl")
    rows: list[dict[str, Value]] = [
        {"bucket": name, "loans": n, "outstanding": fen}
        for name in program.policy.bucket_names()
        for n, fen in [position.buckets.get(name, [0, 0])]
    ]
    rows.append({"bucket": TOTAL, "loans": position.count, "outstanding": position.outstanding_fen})
    return Section(
        "arrears",
        "月末逾期分档",
        "arrears by bucket at the month end",
        (
            _c("bucket", "逾期天数档", "days past due"),
            _c("loans", "贷款笔数", "loans", "int"),
            _c("outstanding", "贷款余额", "principal outstanding", "money"),
        ),
        tuple(rows),
        note=f"The bank's loans owing principal on {end.isoformat()} per delinquency "
        f"bucket (SPEC M-6): days past due as {rule.rule} counts them "
        f"({'principal or interest' if rule.interest else 'principal'}, the worse of our "
        "books and the bank's latest report by then).",
    )


def claims(
    session: Session, program: Program, bank: str, start: date, end: date, cutoff: datetime
) -> Section:
    filed = session.execute(
        select(Claim.requested_fen).where(
            Claim.program == program.code,
            Claim.bank_code == bank,
            Claim.filed_on >= start,
            Claim.filed_on <= end,
            Claim.created_at <= cutoff,
        )
    ).all()
    steps = books.claim_steps(
        session,
        program=program.code,
        cutoff_at=cutoff,
        statuses=(*books.DECISIONS, "paid"),
        bank_code=bank,
        since=start,
        until=end,
    )
    facts = {
        int(r.id): r
        for r in session.execute(
            select(Claim.id, Claim.requested_fen, Claim.approved_fen, Claim.capped_by).where(
                Claim.id.in_(sorted({s.claim_id for s in steps}))
            )
        )
    }
    tally: dict[str, list[int]] = {
        k: [0, 0] for k in ("filed", "approved", "capped", "paid", "rejected")
    }
    tally["filed"] = [len(filed), sum(int(r[0]) for r in filed)]
    for s in steps:
        f = facts[s.claim_id]
        approved = int(f.approved_fen or 0)
        if s.to_status in ("approved", "closed"):
            tally["approved"][0] += 1
            tally["approved"][1] += approved
            if f.capped_by:
                tally["capped"][0] += 1
                tally["capped"][1] += int(f.requested_fen) - approved
        elif s.to_status == "paid":
            tally["paid"][0] += 1
            tally["paid"][1] += approved
        else:
            tally["rejected"][0] += 1
            tally["rejected"][1] += int(f.requested_fen)
    labels = {
        "filed": "申请 filed (requested)",
        "approved": "批准 approved",
        "capped": "超限未补 capped (not approved)",
        "paid": "拨付银行 paid to the bank",
        "rejected": "不予补偿 rejected (requested)",
    }
    return Section(
        "claims",
        "本月代偿",
        "claims of the month",
        (
            _c("item", "项目", "item"),
            _c("label", "说明", "label"),
            _c("claims", "笔数", "claims", "int"),
            _c("amount", "金额", "amount", "money"),
        ),
        tuple(
            {"item": k, "label": labels[k], "claims": n, "amount": fen}
            for k, (n, fen) in tally.items()
        ),
        note="Claims filed in the month (the funds' share requested); decisions and "
        "payments by the business date of the step in the month: approved (the amount "
        "approved, nil approvals included), capped (the approvals the cap or limit cut, "
        "SKD-Q1 / XB-Q1, and by how much), paid to the bank, rejected (the amount "
        "requested).",
    )


def recoveries(
    session: Session,
    program: Program,
    bank: str,
    start: date,
    end: date,
    cutoff: datetime,
) -> Section:
    reported = session.execute(
        select(ClaimRecovery.amount_fen, ClaimRecovery.costs_fen, ClaimRecovery.returned_fen)
        .join(Claim, Claim.id == ClaimRecovery.claim_id)
        .where(
            Claim.program == program.code,
            Claim.bank_code == bank,
            ClaimRecovery.recovered_on >= start,
            ClaimRecovery.recovered_on <= end,
            ClaimRecovery.created_at <= cutoff,
        )
    ).all()
    refunds = session.execute(
        select(ClaimClawback.amount_fen)
        .join(Claim, Claim.id == ClaimClawback.claim_id)
        .where(
            Claim.program == program.code,
            Claim.bank_code == bank,
            ClaimClawback.decided_on >= start,
            ClaimClawback.decided_on <= end,
            ClaimClawback.created_at <= cutoff,
        )
    ).all()
    claim_ids = [
        int(i)
        for i in session.scalars(
            select(Claim.id).where(Claim.program == program.code, Claim.bank_code == bank)
        )
    ]
    moved = books.claim_ledgers(session, claim_ids, since=start, until=end, cutoff_at=cutoff)
    received = sum(x.received_fen for x in moved.values())
    rows: Rows = (
        {
            "item": "recovered",
            "label": "银行报告追偿 collections reported",
            "count": len(reported),
            "amount": sum(int(r[0]) for r in reported),
        },
        {
            "item": "costs",
            "label": "诉讼/催收费用 costs",
            "count": len(reported),
            "amount": sum(int(r[1]) for r in reported),
        },
        {
            "item": "returns_due",
            "label": "应返还基金 returns due",
            "count": len(reported),
            "amount": sum(int(r[2]) for r in reported),
        },
        {
            "item": "refunds_decided",
            "label": "责令退还 refunds decided (XB-R2)",
            "count": len(refunds),
            "amount": sum(int(r[0]) for r in refunds),
        },
        {
            "item": "received",
            "label": "基金收回 received by the funds",
            "count": None,
            "amount": received,
        },
    )
    return Section(
        "recoveries",
        "本月追偿与返还",
        "recoveries and returns of the month",
        (
            _c("item", "项目", "item"),
            _c("label", "说明", "label"),
            _c("count", "笔数", "count", "int"),
            _c("amount", "金额", "amount", "money"),
        ),
        rows,
        note="Collections the bank reported with a date in the month (SKD-R1, XB-R1), "
        "their costs and the returns they made due at the compensation ratio; refunds "
        "decided in the month (XB-R2); what the funds received in the month per the "
        "ledger (returns and refunds booked less the movement of what the bank still "
        "owes).",
    )


# --- the status file (XB-Rep) --------------------------------------------------------------
def status_file(
    session: Session, program: Program, bank: str, year: int, month: int, cutoff: datetime
) -> tuple[Section, Section, Section]:
    report = session.scalars(
        select(StatusReport)
        .where(
            StatusReport.bank_code == bank,
            StatusReport.year == year,
            StatusReport.month == month,
            StatusReport.created_at <= cutoff,
        )
        .order_by(StatusReport.version.desc())
        .limit(1)
    ).first()
    due = report.due_on if report else status_files.due_on(session, bank, year, month)
    if report is not None:
        state = "submitted"
    elif bank not in status_files.expected_banks(session, year, month):
        state = "not_expected"
    else:
        state = "missing" if cutoff.astimezone(CHINA_TZ).date() > due else "not_yet_due"
    head: Rows = (
        {
            "state": state,
            "version": report.version if report else None,
            "submitted_on": report.submitted_on if report else None,
            "due_on": due,
            "late": report.late if report else None,
            "rows": report.row_count if report else None,
            "differences": report.difference_count if report else None,
            "sha256": report.content_sha256 if report else None,
        },
    )
    diffs: list[Any] = []
    if report is not None:
        own = select(Loan.id).where(Loan.program == program.code, Loan.bank_code == bank)
        d = StatusReportDifference
        diffs = list(
            session.scalars(
                select(d)
                .where(d.report_id == report.id, (d.loan_id.in_(own)) | (d.loan_id.is_(None)))
                .order_by(d.id)
            )
        )
    counts: dict[str, int] = {}
    for x in diffs:
        counts[x.kind] = counts.get(x.kind, 0) + 1
    return (
        Section(
            "status_file",
            "月度贷款情况报送",
            "the monthly status file",
            (
                _c("state", "状态", "state"),
                _c("version", "版本", "version", "int"),
                _c("submitted_on", "报送日期", "submitted on", "date"),
                _c("due_on", "截止日期", "due on", "date"),
                _c("late", "逾期报送", "late", "bool"),
                _c("rows", "行数", "rows", "int"),
                _c("differences", "差异数（全文件）", "differences (whole file)", "int"),
                _c("sha256", "内容摘要", "content SHA-256"),
            ),
            head,
            note="XB-Rep: the bank's loan-level file for the month, due by the "
            "programme's status_report_day of the next month; the latest version "
            "recorded by the cut-off. `missing`: the bank had to report (an agreement "
            "covering the month end) and nothing came by the due date (judged on the "
            "cut-off's date); `not_yet_due`; `not_expected`. The file covers the bank's "
            "whole book; its differences are counted here in full.",
        ),
        Section(
            "status_differences_by_kind",
            "差异（按类型）",
            "differences by kind",
            (_c("kind", "类型", "kind"), _c("differences", "差异数", "differences", "int")),
            tuple({"kind": k, "differences": n} for k, n in sorted(counts.items())),
            note="The differences of the file that concern this programme's loans, or a "
            "contract the service does not know (`unknown_contract`).",
        ),
        Section(
            "status_differences",
            "差异明细",
            "the differences",
            (
                _c("kind", "类型", "kind"),
                _c("row_no", "行号", "row", "int"),
                _c("contract_no", "合同编号", "contract number"),
                _c("field", "字段", "field"),
                _c("ours", "本系统", "our books"),
                _c("theirs", "银行报送", "the bank's file"),
            ),
            tuple(
                {
                    "kind": x.kind,
                    "row_no": x.row_no,
                    "contract_no": x.contract_no,
                    "field": x.field,
                    "ours": x.ours,
                    "theirs": x.theirs,
                }
                for x in diffs
            ),
            note="Every difference the reconciliation found, in file order, then the "
            "loans missing from the file (`missing_loan`).",
        ),
    )


# --- SKD-R2: the ledgers side by side ------------------------------------------------------
def _due_since(dues: list[tuple[date, int]], received_fen: int) -> date | None:
    """The date of the earliest amount due not covered by what was received (received
    money settles the earliest dues first)."""
    left = received_fen
    for on, fen in sorted(dues):
        if left >= fen:
            left -= fen
            continue
        return on
    return None


def reconciliation(
    session: Session, program: Program, bank: str, end: date, cutoff: datetime
) -> tuple[Section, Section]:
    decided = books.claim_steps(
        session,
        program=program.code,
        cutoff_at=cutoff,
        statuses=("approved", "closed", "paid"),
        bank_code=bank,
        until=end,
    )
    paid = {s.claim_id for s in decided if s.to_status == "paid"}
    ids = sorted({s.claim_id for s in decided})
    facts = {
        int(r.id): r
        for r in session.execute(
            select(Claim.id, Claim.approved_fen, Loan.contract_no)
            .join(Loan, Loan.id == Claim.loan_id)
            .where(Claim.id.in_(ids), Claim.approved_fen > 0)
        )
    }
    ids = [i for i in ids if i in facts]
    reported: dict[int, list[Any]] = defaultdict(list)
    for r in session.execute(
        select(
            ClaimRecovery.claim_id,
            ClaimRecovery.amount_fen,
            ClaimRecovery.costs_fen,
            ClaimRecovery.returned_fen,
            ClaimRecovery.recovered_on,
            ClaimRecovery.due_on,
        ).where(
            ClaimRecovery.claim_id.in_(ids),
            ClaimRecovery.recovered_on <= end,
            ClaimRecovery.created_at <= cutoff,
        )
    ):
        reported[int(r[0])].append(r)
    refunds: dict[int, list[Any]] = defaultdict(list)
    for back in session.execute(
        select(ClaimClawback.claim_id, ClaimClawback.amount_fen, ClaimClawback.decided_on).where(
            ClaimClawback.claim_id.in_(ids),
            ClaimClawback.decided_on <= end,
            ClaimClawback.created_at <= cutoff,
        )
    ):
        refunds[int(back[0])].append(back)
    ledgers = books.claim_ledgers(session, ids, until=end, cutoff_at=cutoff)
    rows: list[dict[str, Value]] = []
    differences: list[dict[str, Value]] = []
    for claim_id in ids:
        f, led = facts[claim_id], ledgers[claim_id]
        approved = int(f.approved_fen or 0)
        paid_record = approved if claim_id in paid else 0
        recs, backs = reported[claim_id], refunds[claim_id]
        returns_bank = sum(int(r[3]) for r in recs)
        refunds_record = sum(int(r[1]) for r in backs)

        dues = [(r[5] or r[4], int(r[3])) for r in recs] + [(r[2], int(r[1])) for r in backs]
        compared: list[tuple[str, str, int, int, date | None]] = [
            ("paid", "the claim's record (paid to the bank)", paid_record, led.paid_fen, None),
            ("returns", "the bank's reported collections", returns_bank, led.returns_fen, None),
            ("refunds", "the refunds decided (XB-R2)", refunds_record, led.refunds_fen, None),
            (
                "not_received",
                "returns and refunds due, against what the funds received",
                led.returns_fen + led.refunds_fen,
                led.received_fen,
                _due_since(dues, led.received_fen) if led.receivable_fen else None,
            ),
        ]
        found = [
            {
                "claim_id": claim_id,
                "contract_no": f.contract_no,
                "kind": kind,
                "basis": basis,
                "expected": expected,
                "ledger": ledger,
                "difference": expected - ledger,
                "due_since": due_since,
            }
            for kind, basis, expected, ledger, due_since in compared
            if expected != ledger
        ]
        differences += found
        rows.append(
            {
                "claim_id": claim_id,
                "contract_no": f.contract_no,
                "approved": approved,
                "paid_record": paid_record,
                "paid_ledger": led.paid_fen,
                "recovered_bank": sum(int(r[1]) for r in recs),
                "costs_bank": sum(int(r[2]) for r in recs),
                "returns_bank": returns_bank,
                "returns_ledger": led.returns_fen,
                "refunds_ledger": led.refunds_fen,
                "received_ledger": led.received_fen,
                "owed_ledger": led.receivable_fen,
                "differences": len(found),
            }
        )
    side_by_side = Section(
        "ledger_reconciliation",
        "台账核对",
        "SKD-R2 ledger reconciliation",
        (
            _c("claim_id", "代偿编号", "claim", "int"),
            _c("contract_no", "合同编号", "contract number"),
            _c("approved", "批准金额", "approved", "money"),
            _c("paid_record", "拨付（代偿记录）", "paid, the claim's record", "money"),
            _c("paid_ledger", "拨付（基金台账）", "paid, the funds' ledger", "money"),
            _c("recovered_bank", "追偿（银行报告）", "collected, as the bank reported", "money"),
            _c("costs_bank", "费用（银行报告）", "costs, as the bank reported", "money"),
            _c(
                "returns_bank", "应返还（银行报告）", "returns due, per the bank's reports", "money"
            ),
            _c("returns_ledger", "应返还（基金台账）", "returns due, the funds' ledger", "money"),
            _c("refunds_ledger", "退还（基金台账）", "refunds due, the funds' ledger", "money"),
            _c("received_ledger", "已收回（基金台账）", "received, the funds' ledger", "money"),
            _c("owed_ledger", "待收回（基金台账）", "still owed by the bank", "money"),
            _c("differences", "差异数", "differences", "int"),
        ),
        tuple(rows),
        note="SKD-R2 (46号 三(三)4): every claim of the bank with compensation approved by "
        "the month end, cumulative to it. The funds' side is the ledger: the claim's "
        "entries (L-1), reversals included. The bank's side is what it reported through "
        "the API: its collections and their costs (POST /claims/{id}/recoveries), and "
        "the returns they make due at the compensation ratio (SKD-R1, XB-R1). By "
        "construction some columns can only differ through a reversing entry (L-2): a "
        "payment is posted with the claim's step, and a reported collection's return "
        "with the report itself. Banks report no receipt of compensation and no "
        "transfer of a return: the payment is compared with the claim's record (what "
        "the bank reads on GET /claims/{id}), and money due back from the bank with "
        "what the fund manager recorded received (POST /claims/{id}/receipts; SKD "
        "returns are cash at once).",
    )
    listed = Section(
        "ledger_differences",
        "台账差异",
        "SKD-R2 differences",
        (
            _c("claim_id", "代偿编号", "claim", "int"),
            _c("contract_no", "合同编号", "contract number"),
            _c("kind", "类型", "kind"),
            _c("basis", "核对依据", "compared with"),
            _c("expected", "应为", "expected", "money"),
            _c("ledger", "基金台账", "the funds' ledger", "money"),
            _c("difference", "差额", "difference", "money"),
            _c("due_since", "最早应收日", "due since", "date"),
        ),
        tuple(differences),
        note="Every difference of the reconciliation: `paid` (the claim's record against "
        "the ledger's payment), `returns` (the bank's reported collections against the "
        "ledger's returns), `refunds` (XB-R2 decisions against the ledger), "
        "`not_received` (returns and refunds due that the funds have not received; "
        "`due_since`: the earliest amount due still open, XB-R1's 10 working days).",
    )
    return side_by_side, listed


class BankReportNotFound(NotFound):
    title, title_zh = "No report of this bank for the caller", "无权查看该银行的报告或银行不存在"


# --- the document --------------------------------------------------------------------------
def _check_month(month: int) -> None:
    if not 1 <= month <= 12:
        raise ValidationFailed(
            "the month is 1–12", [ValidationFailed.violation("1–12", "query", "month")]
        )


def build_monthly(
    session: Session,
    *,
    program: str,
    bank_code: str,
    year: int,
    month: int,
    principal: Principal,
    cutoff_at: datetime,
    as_of: date | None = None,
) -> ReportDocument:
    """One bank's month in the programme. A bank reads only its own (another bank: 404,
    as for status files); a fund manager (of this programme only, else 403) and a city
    reviewer the banks with an agreement in its programme or region (else 404); others
    every bank. Positions are as of the month's last day — or `as_of` when earlier (a
    month not over yet) — from rows recorded by `cutoff_at`."""
    prog = get_program(program)
    _check_month(month)
    scope = books.banks_in_scope(session, principal, program)
    bank = session.get(Bank, bank_code)
    if bank is None or (scope is not None and bank_code not in scope):
        raise BankReportNotFound(f"no report of bank {bank_code} for this caller")
    start = date(year, month, 1)
    end = date(year, month, calendar.monthrange(year, month)[1])
    on = max(min(end, as_of), start) if as_of is not None else end
    position = books.by_bank(
        books.positions(
            session, program=program, as_of=on, cutoff_at=cutoff_at, bank_code=bank_code
        )
    ).get(bank_code, books.Position())
    if not position.buckets:
        position.buckets = {n: [0, 0] for n in prog.policy.bucket_names()}
    status, by_kind, listed = status_file(session, prog, bank_code, year, month, cutoff_at)
    side_by_side, differences = reconciliation(session, prog, bank_code, on, cutoff_at)
    sections = (
        filings(session, prog, bank_code, start, on, cutoff_at),
        repayments(session, prog, bank_code, start, on, cutoff_at),
        arrears(position, prog, on),
        claims(session, prog, bank_code, start, on, cutoff_at),
        recoveries(session, prog, bank_code, start, on, cutoff_at),
        status,
        by_kind,
        listed,
        side_by_side,
        differences,
    )
    return ReportDocument(
        kind="monthly",
        program=program,
        period=f"{year}-{month:02d}",
        period_start=start,
        period_end=end,
        title_zh=f"{prog.name_zh} {year}年{month}月 月度报告 · {bank.name}",
        title_en=f"{prog.name_en}: monthly report {year}-{month:02d}, {bank.name} ({bank_code})",
        sections=sections,
        scope=bank_code,
        meta={"as_of": on, "bank_code": bank_code, "bank_name": bank.name},
    )
