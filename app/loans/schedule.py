"""A filing's repayment schedule (还款计划, SPEC M-6): checked, defaulted and stored.

Checked with every problem listed: the instalments are in strictly increasing date
order, each due after the disbursement and on or before maturity, each with something
due, and their principal sums to the loan's principal exactly. Without a schedule the
loan has one bullet instalment: the whole principal at maturity, no interest."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.errors import Unprocessable, Violation, refusal
from app.kit.money import format_fen
from app.loans.arrears import Instalment
from app.loans.schemas import LoanTerms
from app.models import Loan, LoanInstalment

RULE = "M-6"


class InstalmentBeforeDisbursement(Unprocessable):
    """An instalment of the repayment schedule is due on or before the disbursement
    (M-6): every instalment falls due after `disbursed_on`."""

    code, rule = "instalment_before_disbursement", RULE
    title, title_zh = "Instalment due before disbursement", "还款计划中有不晚于放款日的期次"


class InstalmentAfterMaturity(Unprocessable):
    """An instalment is due after the loan's maturity (M-6)."""

    code, rule = "instalment_after_maturity", RULE
    title, title_zh = "Instalment due after maturity", "还款计划中有晚于到期日的期次"


class ScheduleNotInOrder(Unprocessable):
    """The instalments are not in strictly increasing date order (M-6)."""

    code, rule = "schedule_not_in_order", RULE
    title, title_zh = "Instalments out of order", "还款计划各期未按日期先后排列"


class InstalmentEmpty(Unprocessable):
    """An instalment has nothing due: principal and interest both zero (M-6)."""

    code, rule = "instalment_empty", RULE
    title, title_zh = "Empty instalment", "还款计划中有本息均为零的期次"


class SchedulePrincipalMismatch(Unprocessable):
    """The instalments' principal does not sum to the loan's principal (M-6)."""

    code, rule = "schedule_principal_mismatch", RULE
    title, title_zh = "Schedule principal mismatch", "还款计划本金合计与贷款本金不符"


SCHEDULE_REFUSALS: tuple[type[Unprocessable], ...] = (
    InstalmentBeforeDisbursement,
    InstalmentAfterMaturity,
    ScheduleNotInOrder,
    InstalmentEmpty,
    SchedulePrincipalMismatch,
)


def plan(terms: LoanTerms) -> list[Instalment]:
    """The schedule as filed, or the bullet default."""
    if not terms.schedule:
        return [Instalment(terms.maturity_on, terms.principal, 0)]
    return [Instalment(i.due_on, i.principal, i.interest) for i in terms.schedule]


def violations(terms: LoanTerms, where: tuple[str | int, ...] = ("body",)) -> list[Violation]:
    """Every problem of the filing's schedule (none without one)."""
    if not terms.schedule:
        return []
    out: list[Violation] = []
    at = (*where, "schedule")
    previous = None
    for n, inst in enumerate(terms.schedule):
        if inst.due_on <= terms.disbursed_on:
            out.append(
                InstalmentBeforeDisbursement.violation(
                    f"due on or before the disbursement ({terms.disbursed_on.isoformat()})",
                    *at,
                    n,
                    "due_on",
                )
            )
        if inst.due_on > terms.maturity_on:
            out.append(
                InstalmentAfterMaturity.violation(
                    f"due after maturity ({terms.maturity_on.isoformat()})", *at, n, "due_on"
                )
            )
        if previous is not None and inst.due_on <= previous:
            out.append(
                ScheduleNotInOrder.violation(
                    f"not after the previous instalment's {previous.isoformat()}: "
                    "instalments are listed in strictly increasing date order",
                    *at,
                    n,
                    "due_on",
                )
            )
        previous = inst.due_on
        if inst.principal + inst.interest == 0:
            out.append(
                InstalmentEmpty.violation(
                    "nothing is due: principal and interest are both zero", *at, n
                )
            )
    total = sum(i.principal for i in terms.schedule)
    if total != terms.principal:
        out.append(
            SchedulePrincipalMismatch.violation(
                f"the instalments' principal sums to {format_fen(total)}, the loan's "
                f"principal is {format_fen(terms.principal)}",
                *at,
            )
        )
    return out


def check(terms: LoanTerms) -> None:
    """Refuse the filing (422, every problem listed; the code is the first's) when its
    schedule is wrong."""
    found = violations(terms)
    if found:
        raise refusal(found, f"the repayment schedule has {len(found)} problem(s)")


def rows(loan_id: int, schedule: Sequence[Instalment]) -> list[dict[str, object]]:
    return [
        {
            "loan_id": loan_id,
            "seq": n,
            "due_on": i.due_on,
            "principal_fen": i.principal_fen,
            "interest_fen": i.interest_fen,
        }
        for n, i in enumerate(schedule, start=1)
    ]


def store(session: Session, items: Sequence[tuple[Loan, Sequence[Instalment]]]) -> None:
    """The schedules of these (inserted) loans: one multi-row INSERT, or COPY on
    PostgreSQL for a large batch."""
    data = [r for loan, schedule in items for r in rows(loan.id, schedule)]
    if not data:
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql" and len(data) >= 200:
        driver = conn.connection.driver_connection
        assert driver is not None
        columns = ["loan_id", "seq", "due_on", "principal_fen", "interest_fen"]
        with (
            driver.cursor() as cur,
            cur.copy(f"COPY loan_instalments ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for r in data:
                copy.write_row([r[c] for c in columns])
        return
    session.execute(insert(LoanInstalment), data)
