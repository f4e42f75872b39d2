"""Rules both programmes share, pure. The claim checks are untagged: each programme tags
them with its own rule IDs (`Rule(id, check)` in its `claims.py`: SKD-C2 / SKD-S2 for
SKD, XB-C1 / XB-N7 for XB); so are the reasons of an overdue loan on the service's own
books at filing (SKD-F4, XB-N2).

The refusals both programmes' rules use are defined here, once: each class owns its
code (`/problems/{code}`); a class used under several rule tags leaves `rule` unset and
the tag names the rule of each finding."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from app.errors import Unprocessable, Violation


# --- refusals of a claim, whichever the programme (SKD-C2, XB-C1, SKD-S2, XB-N7) -------
class LoanNotClaimable(Unprocessable):
    """Only an active loan can be claimed: this one is repaid, renewed, already under a
    claim or compensated (SKD-C2, XB-C1)."""

    code = "loan_not_claimable"
    title, title_zh = "Loan not claimable", "贷款当前状态不能申请代偿"


class NotCompensable(Unprocessable):
    """The loan was accepted as not compensable (filed after its deadline, or marked so
    since): the fund compensates no loss on it (SKD-S2, XB-N7)."""

    code = "not_compensable"
    title, title_zh = "Loan not compensable", "该笔贷款不属于风险补偿范围"


class NothingOutstanding(Unprocessable):
    """No principal of the loan is outstanding, so there is no loss to claim."""

    code = "nothing_outstanding"
    title, title_zh = "No principal outstanding", "贷款无未偿还本金"


class NotYetClaimable(Unprocessable):
    """The loan is not yet past due long enough for a claim: SKD 90 days of principal
    (SKD-C2), XB 45 days of principal or interest (XB-C1)."""

    code = "not_yet_claimable"
    title, title_zh = "Not past due long enough", "逾期天数未达到申请代偿的条件"


# --- refusals of a filing both programmes' rules use -----------------------------------
class OverdueLoanInBooks(Unprocessable):
    """A loan recorded here — the enterprise's, or one of another enterprise with the
    same actual controller — is in arrears and unpaid on the filing's business date
    (SKD-F4, XB-N2). Another bank's contract number is never shown."""

    code = "overdue_loan_in_books"
    title, title_zh = "Overdue loan on the books", "企业或其实际控制人在本系统有逾期未还贷款"


class UnpaidOverdueLoan(Unprocessable):
    """The enterprise's recorded facts say it or its actual controller has an unpaid
    overdue loan elsewhere (SKD-F4, XB-N2)."""

    code = "unpaid_overdue_loan"
    title, title_zh = "Unpaid overdue loan", "企业或其实际控制人有未结清的逾期贷款"


class ControllerGuaranteeRequired(Unprocessable):
    """The loan must carry the actual controller's joint guarantee: for SKD credit loans
    the controller couple's (SKD-P2); for XB loans the legal representative's,
    controlling shareholder's or actual controller's (XB-E1). Send
    `controller_guarantee: true`."""

    code = "controller_guarantee_required"
    title = "Actual controller's guarantee required"
    title_zh = "须由实际控制人提供连带责任保证"


class SecurityNotAllowed(Unprocessable):
    """The programme does not take this `security`: an SKD credit-only product at this
    amount takes credit or an IP pledge (SKD-P2); an XB loan is a credit or a
    guaranteed loan (XB-S1)."""

    code = "security_not_allowed"
    title, title_zh = "Security not allowed", "担保方式不符合要求"


class FeesNotAllowed(Unprocessable):
    """The loan charges fees the programme does not allow: none on an SKD credit loan
    (SKD-P2), none but a guarantee fee on an XB loan (XB-P1). Send `fee_rate_bp: 0`."""

    code = "fees_not_allowed"
    title, title_zh = "Fees not allowed", "不得收取规定以外的费用"


class TermTooLong(Unprocessable):
    """The loan runs longer than the programme allows: SKD 1 year (SKD-P1), XB 3 years
    (XB-P1)."""

    code = "term_too_long"
    title, title_zh = "Loan term too long", "贷款期限超过上限"


class LprUnknown(Unprocessable):
    """No 1-year loan prime rate (LPR) is recorded in force on the disbursement date, so
    the rate cap cannot be checked (M-4); the administrator records it under
    `/lpr-rates`."""

    code, rule = "lpr_unknown", "M-4"
    title, title_zh = "No LPR in force", "放款日无适用的贷款市场报价利率（LPR）"


class RateAboveCap(Unprocessable):
    """The annual rate is above the programme's cap: the LPR in force on the disbursement
    date plus the product's or security's spread (SKD-P1, XB-P1)."""

    code = "rate_above_cap"
    title, title_zh = "Interest rate above the cap", "贷款利率超过上限"


class DisbursedInFuture(Unprocessable):
    """A loan is filed once it is disbursed: `disbursed_on` is after the business date
    (SKD-F2, XB-F2)."""

    code = "disbursed_in_future"
    title, title_zh = "Disbursement date in the future", "放款日晚于备案日"


class NoAgreement(Unprocessable):
    """The bank holds no cooperation agreement covering the loan: SKD with the city fund
    of the enterprise's region on the disbursement date (SKD-F1), XB with the sub-fund
    (XB-F0)."""

    code = "no_agreement"
    title, title_zh = "No cooperation agreement", "银行未签订覆盖该笔贷款的合作协议"


class BankSuspended(Unprocessable):
    """The bank's business in the programme is suspended (SKD-F1, XB-Q1): no filing is
    accepted until the agreement is resumed."""

    code = "bank_suspended"
    title, title_zh = "Bank suspended", "银行在该业务中已被暂停"


class AgreementNotActive(Unprocessable):
    """The bank's agreement is terminated or expired (SKD-F1, XB-R2)."""

    code = "agreement_not_active"
    title, title_zh = "Agreement not active", "合作协议已终止或失效"


class GuarantorConsentNotApplicable(Unprocessable):
    """The guarantor's consent letter (同意担保确认函) goes with guaranteed XB loans only;
    a credit loan or an SKD loan carries none (XB-F2). Leave `guarantor_consent` out."""

    code, rule = "guarantor_consent_not_applicable", "XB-F2"
    title, title_zh = "Consent letter not applicable", "该笔贷款不适用同意担保确认函"


SHARED_FILING_REFUSALS: tuple[type[Unprocessable], ...] = (
    OverdueLoanInBooks,
    UnpaidOverdueLoan,
    ControllerGuaranteeRequired,
    SecurityNotAllowed,
    FeesNotAllowed,
    TermTooLong,
    LprUnknown,
    RateAboveCap,
    DisbursedInFuture,
    NoAgreement,
    BankSuspended,
    AgreementNotActive,
    GuarantorConsentNotApplicable,
)
CLAIM_REFUSALS: tuple[type[Unprocessable], ...] = (
    LoanNotClaimable,
    NotCompensable,
    NothingOutstanding,
    NotYetClaimable,
)


class LoanPosition(Protocol):
    """What a claim check needs to know of the loan on the day of the claim."""

    @property
    def loan_status(self) -> str: ...
    @property
    def compensable(self) -> bool: ...
    @property
    def outstanding_fen(self) -> int: ...
    @property
    def days_past_due(self) -> int: ...


class PastDuePolicy(Protocol):
    @property
    def min_days_past_due(self) -> int: ...


def _claim_refusal(error: type[Unprocessable], msg: str) -> Violation:
    return error.violation(msg, "body", "loan_id")


def loan_active(f: LoanPosition, p: object) -> Violation | None:
    """Only an active loan can be claimed."""
    if f.loan_status == "active":
        return None
    return _claim_refusal(
        LoanNotClaimable, f"the loan is {f.loan_status}; only an active loan can be claimed"
    )


def compensable(msg: str) -> Callable[[LoanPosition, object], Violation | None]:
    """A loan marked non-compensable is refused, with the programme's reason `msg`."""

    def loan_compensable(f: LoanPosition, p: object) -> Violation | None:
        return None if f.compensable else _claim_refusal(NotCompensable, msg)

    return loan_compensable


def past_due_long_enough(f: LoanPosition, p: PastDuePolicy) -> Violation | None:
    """Principal is outstanding and at least `min_days_past_due` days past due."""
    if f.outstanding_fen <= 0:
        return _claim_refusal(NothingOutstanding, "no principal is outstanding")
    if f.days_past_due < p.min_days_past_due:
        return _claim_refusal(
            NotYetClaimable,
            f"the loan is {f.days_past_due} days past due; a claim needs {p.min_days_past_due}",
        )
    return None


def recovery_return(*, net_fen: int, loss_fen: int, paid_fen: int, returned_fen: int) -> int:
    """SKD-R1 / XB-R1: the net recovery returned at the original compensation ratio
    (paid ÷ loss), rounded down to the fen, never beyond what is still unreturned."""
    due = net_fen * paid_fen // loss_fen
    return max(min(due, paid_fen - returned_fen), 0)


# --- an overdue loan on the service's own books, at filing (SKD-F4, XB-N2) ---------------
@dataclass(frozen=True)
class OverdueFact:
    """A loan recorded here, in any programme, not settled and in arrears (principal or
    interest, the worse of the service's books and its bank's report, M-6) on the
    filing's business date: the enterprise's own, or one of another enterprise with the
    same actual controller (`app.loans.lookups.FilingLookups.overdue_in_books`)."""

    credit_code: str  # the enterprise whose loan it is
    own: bool  # the enterprise filed for; else its actual controller's other enterprise
    program: str
    contract_no: str | None  # None: a loan filed by another bank (its number not shown)
    days_past_due: int
    overdue_since: date


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def overdue_loan_reason(f: OverdueFact) -> Violation:
    """One refusal per overdue loan, naming whose loan it is (never another bank's
    contract number)."""
    whose = (
        "the enterprise's"
        if f.own
        else f"its actual controller's other enterprise {f.credit_code}'s"
    )
    which = (
        f"{f.program} loan {f.contract_no}"
        if f.contract_no
        else f"{f.program} loan, a loan filed by another bank,"
    )
    return OverdueLoanInBooks.violation(
        f"{whose} {which} is {_days(f.days_past_due)} past due (overdue since "
        f"{f.overdue_since.isoformat()}) and unpaid",
        "body",
        "enterprise_credit_code",
    )


def overdue_loan_reasons(facts: Iterable[OverdueFact]) -> list[Violation]:
    return [overdue_loan_reason(f) for f in facts]
