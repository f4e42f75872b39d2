"""Compensation claims, whichever the programme: filing a claim on a loan, the bank's
documents, acting on the stage the claim waits at (the programme's handler, under the
stage's guard), returns for correction (`returns.py`), recoveries, and after payment the
programme's refunds and receipts. The programme decides; this finds the claim in the
caller's scope, locks it and records."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.claims import deadlines, steps
from app.claims import repository as repo
from app.claims.steps import InvalidStepDate, NotCompensated
from app.claims.workflow import Stage, StepContext, StepInput
from app.errors import (
    AppError,
    Conflict,
    RoleNotAllowed,
    Unprocessable,
    ValidationFailed,
    Violation,
    refusal,
)
from app.loans import repository as loans_repo
from app.loans import servicing
from app.models import (
    Claim,
    ClaimClawback,
    ClaimDocument,
    ClaimReceipt,
    ClaimRecovery,
    ClaimTransition,
)
from app.programs.base import get_program

V = TypeVar("V")


class UnknownLoan(Unprocessable):
    """The claim names a loan that does not exist or is not the calling bank's."""

    code = "unknown_loan"
    title, title_zh = "No such loan of yours", "贷款不存在或不属于本行"


class ClaimExists(Conflict):
    """The loan already has a claim that is not rejected (one live claim per loan)."""

    code = "claim_exists"
    title, title_zh = "The loan already has a claim", "该笔贷款已有代偿申请"


class DocumentsClosed(Conflict):
    """The claim is past the stages at which the bank adds documents (SKD: until the
    province review; XB: until the manager's review; both while returned for
    correction)."""

    code = "documents_closed"
    title, title_zh = "Documents no longer accepted", "当前环节不再接收申请材料"


class DocumentTooLarge(AppError):
    """An uploaded document exceeds `MAX_UPLOAD_BYTES`."""

    status = 413
    code, title, title_zh = "document_too_large", "Document too large", "上传文件过大"


class DocumentEmpty(Unprocessable):
    """The uploaded file has no content."""

    code = "document_empty"
    title, title_zh = "Empty document", "上传文件为空"


class DocumentTypeNotAccepted(Unprocessable):
    """The declared content type is not one the service accepts for claim documents
    (`UPLOAD_CONTENT_TYPES`: PDF, JPEG, PNG, ZIP by default)."""

    code = "document_type_not_accepted"
    title, title_zh = "Document type not accepted", "不接受该文件类型"


class DocumentTypeMismatch(Unprocessable):
    """The file's content does not match its declared type (e.g. a `application/pdf`
    that does not start with `%PDF-`)."""

    code = "document_type_mismatch"
    title, title_zh = "Content does not match its type", "文件内容与声明的类型不符"


class RecoveryCostsExceedAmount(Unprocessable):
    """The litigation costs reported are more than the amount recovered (SKD-R1, XB-R1:
    the net recovery is amount − costs)."""

    code = "costs_exceed_recovery"
    title, title_zh = "Costs exceed the amount recovered", "诉讼费用超过追回金额"


class RecoveryNotPositive(Unprocessable):
    """A recovery reports an amount of more than zero."""

    code = "recovery_not_positive"
    title, title_zh = "Nothing recovered", "追回金额须大于零"


# the refusals of each kind of call, for the routes' documentation
FILE_CLAIM_REFUSALS: tuple[type[AppError], ...] = (
    UnknownLoan,
    InvalidStepDate,
    ClaimExists,
)
DOCUMENT_REFUSALS: tuple[type[AppError], ...] = (
    RoleNotAllowed,
    DocumentsClosed,
    DocumentTooLarge,
    DocumentEmpty,
    DocumentTypeNotAccepted,
    DocumentTypeMismatch,
)
RECOVERY_REFUSALS: tuple[type[AppError], ...] = (
    RoleNotAllowed,
    NotCompensated,
    RecoveryNotPositive,
    RecoveryCostsExceedAmount,
    InvalidStepDate,
)


# --- filing --------------------------------------------------------------------------
def file_claim(
    session: Session,
    *,
    loan_id: int,
    lawsuit_case_no: str | None,
    lawsuit_accepted_on: date | None,
    comment: str,
    actor: Principal,
    today: date,
    now: datetime,
) -> Claim:
    """A claim on the bank's loan: its programme checks it (SKD-C2, XB-C1) and sets the
    loss and shares; the loan becomes claimed and the claim waits for its first stage."""
    loan = loans_repo.loan_for_update(session, loan_id)
    if loan is None or not actor.can_see_bank(loan.bank_code):
        raise UnknownLoan(
            f"loan {loan_id} not found",
            [UnknownLoan.violation("no such loan of yours", "body", "loan_id")],
        )
    live = repo.live_claim_for_loan(session, loan.id)
    if live is not None:
        raise ClaimExists(
            f"loan {loan.id} already has claim {live.id} ({live.status})",
            [ClaimExists.violation(f"claim {live.id} exists", "body", "loan_id")],
        )
    if lawsuit_accepted_on is not None and lawsuit_accepted_on > today:
        raise InvalidStepDate(
            "lawsuit_accepted_on is in the future",
            [InvalidStepDate.violation("in the future", "body", "lawsuit_accepted_on")],
        )
    position = servicing.positions(session, [loan], today)[loan.id]
    claim = get_program(loan.program).new_claim(
        session,
        loan=loan,
        position=position,
        lawsuit_case_no=lawsuit_case_no,
        lawsuit_accepted_on=lawsuit_accepted_on,
        actor=actor,
        today=today,
    )
    deadlines.set_deadlines_for_status(session, claim)  # XB-C2: the manager's opinion
    session.add(claim)
    session.flush()
    repo.record_shares(session, claim.id, "requested", claim.shares)
    ctx = StepContext(session, claim, actor, StepInput(comment=comment), today, now)
    steps.set_loan_status(ctx, loan, "claim", reason=f"claim {claim.id} filed")
    steps.transition(ctx, "submit")  # the workflow's rules for a new claim, and its history
    return claim


# --- documents -----------------------------------------------------------------------
_SIGNATURES = {
    "application/pdf": (b"%PDF-",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/zip": (b"PK\x03\x04",),
}


def add_document(
    session: Session,
    *,
    claim_id: int,
    kind: str,
    filename: str,
    content_type: str,
    content: bytes,
    allowed_types: list[str],
    max_bytes: int,
    actor: Principal,
    now: datetime,
) -> ClaimDocument:
    """SKD-C1: the bank's electronic files, stored with their SHA-256. The declared type
    must be allowed and match the file's signature; empty and oversized files are
    refused."""
    claim = steps.claim_for_step(session, claim_id, actor)
    if not actor.is_bank:
        raise RoleNotAllowed("documents are uploaded by the claiming bank")
    open_in = steps.workflow_of(claim).documents_open
    if claim.status not in open_in:
        raise DocumentsClosed(
            f"claim {claim.id} is {claim.status}; documents are added while it is "
            + ", ".join(sorted(open_in)),
            [DocumentsClosed.violation(f"claim status is {claim.status}", "status")],
        )
    if len(content) > max_bytes:
        raise DocumentTooLarge(f"the file has {len(content)} bytes; at most {max_bytes} allowed")
    problems = []
    if not content:
        problems.append(DocumentEmpty.violation("the file is empty", "body", "file"))
    if content_type not in allowed_types:
        problems.append(
            DocumentTypeNotAccepted.violation(
                f"type {content_type or 'unknown'} is not accepted; allowed: "
                + ", ".join(allowed_types),
                "body",
                "file",
            )
        )
    elif content and not content.startswith(_SIGNATURES.get(content_type, (b"",))):
        problems.append(
            DocumentTypeMismatch.violation(
                f"the content is not a {content_type} file", "body", "file"
            )
        )
    if problems:
        raise refusal(problems, "the document was refused")
    doc = ClaimDocument(
        claim_id=claim.id,
        kind=kind,
        filename=filename[:200] or "document",
        content_type=content_type,
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        uploaded_by_id=actor.user_id,
        uploaded_at=now,
    )
    session.add(doc)
    session.flush()
    return doc


# --- stages --------------------------------------------------------------------------
def act(
    session: Session,
    *,
    claim_id: int,
    stage: str,
    step: StepInput,
    actor: Principal,
    today: date,
    now: datetime,
) -> Claim:
    """Act on the claim's stage `stage`: the claim in the caller's scope, locked; the
    stage of its programme (409 if the programme has none of that name), its guard (role,
    fund, maker-checker SKD-C3), then the programme's handler, which moves the claim
    through `steps.transition`."""
    claim, _, _ = act_and_view(
        session,
        claim_id=claim_id,
        stage=stage,
        step=step,
        actor=actor,
        today=today,
        now=now,
        view=lambda: None,
    )
    return claim


def act_and_view(
    session: Session,
    *,
    claim_id: int,
    stage: str,
    step: StepInput,
    actor: Principal,
    today: date,
    now: datetime,
    view: Callable[[], V],
) -> tuple[Claim, V, list[ClaimTransition]]:
    """`act`, reading `view()` (the claim as the answer shows it) after every other
    write and before the step's ledger entries are posted: the reads of the view are
    not made under the ledger's chain head, the last lock taken. Returns the claim, the
    view and the history rows written with the entries (after the view was read: the
    caller adds them to it)."""
    claim = steps.claim_for_step(session, claim_id, actor)
    found = steps.stage_of(claim, stage)
    steps.guard(session, claim, actor, found)
    _check_input(found, step)
    ctx = StepContext(session, claim, actor, step, today, now)
    found.handler(ctx)
    session.flush()
    seen = view()
    posted = steps.finish(ctx)  # the ledger entries last: the chain head is the last lock
    return claim, seen, posted


def _check_input(stage: Stage, step: StepInput) -> None:
    """What the stage takes: a review its decision (and a reason to reject), a payment
    its date; the extras only the stages that take them (SKD-S2's finding of
    ineligibility at the SKD reviews, findings and opinion at the XB due diligence)."""
    problems: list[Violation] = []

    def refuse(field: str, msg: str) -> None:
        problems.append(ValidationFailed.violation(msg, "body", field))

    if stage.review:
        if step.approve is None:
            refuse("decision", f"{stage.name} needs approve or reject")
        if step.paid_on is not None:
            refuse("paid_on", f"{stage.name} is a review; it takes no paid_on")
        reason = step.comment or (step.opinion if "opinion" in stage.takes else "")
        if step.approve is False and not reason:
            refuse("comment", "a rejection needs a reason")
    else:
        if step.approve is not None:
            refuse("decision", f"{stage.name} is a payment; it takes no decision")
        if step.paid_on is None:
            refuse("paid_on", f"{stage.name} needs paid_on")
    extras = {
        "findings": bool(step.findings),
        "opinion": bool(step.opinion),
        "ineligible_at_grant": step.ineligible_at_grant,
    }
    for field, given in extras.items():
        if given and field not in stage.takes:
            refuse(field, f"{stage.name} does not take {field}")
        if not given and field in stage.requires:
            refuse(field, f"{stage.name} needs {field}")
    if problems:
        raise ValidationFailed(
            f"the {stage.name} step is incomplete or takes other fields", problems
        )


# --- recoveries ----------------------------------------------------------------------
def record_recovery(
    session: Session,
    *,
    claim_id: int,
    recovered_on: date,
    amount_fen: int,
    costs_fen: int,
    actor: Principal,
    today: date,
    now: datetime,
) -> ClaimRecovery:
    """The bank reports money recovered after compensation; the programme returns the
    funds' part (SKD-R1 at once, XB-R1 due within working days). Cumulative returns
    never exceed the compensation paid."""
    claim = steps.claim_for_step(session, claim_id, actor)
    if not actor.is_bank:
        raise RoleNotAllowed("recoveries are reported by the claiming bank")
    if claim.status not in steps.workflow_of(claim).compensated:
        raise NotCompensated(
            f"claim {claim.id} is {claim.status}; recoveries are reported after payment",
            [NotCompensated.violation(f"claim status is {claim.status}", "status")],
        )
    problems = []  # every problem of the report at once
    if amount_fen <= 0:
        problems.append(RecoveryNotPositive.violation("must be more than 0.00", "body", "amount"))
    if costs_fen > amount_fen:
        problems.append(
            RecoveryCostsExceedAmount.violation(
                "costs exceed the amount recovered", "body", "costs"
            )
        )
    if recovered_on > today:
        problems.append(InvalidStepDate.violation("in the future", "body", "recovered_on"))
    if claim.paid_on and recovered_on < claim.paid_on:
        problems.append(
            InvalidStepDate.violation(
                f"before the compensation was paid on {claim.paid_on.isoformat()}",
                "body",
                "recovered_on",
            )
        )
    if problems:
        raise refusal(problems, f"the recovery was refused: {len(problems)} problem(s)")
    return get_program(claim.program).record_recovery(
        session,
        claim=claim,
        recovered_on=recovered_on,
        amount_fen=amount_fen,
        costs_fen=costs_fen,
        actor=actor,
        now=now,
    )


# --- after payment: refunds and receipts (XB-R1, XB-R2) --------------------------------
def _program_of(session: Session, claim_id: int, actor: Principal) -> str:
    """The claim's programme, the claim in the caller's scope (locked, as the step will
    lock it again)."""
    return steps.claim_for_step(session, claim_id, actor).program


def clawback(
    session: Session,
    *,
    claim_id: int,
    kind: str,
    reason: str,
    decided_on: date,
    actor: Principal,
    today: date,
    now: datetime,
) -> ClaimClawback:
    return get_program(_program_of(session, claim_id, actor)).clawback(
        session,
        claim_id=claim_id,
        kind=kind,
        reason=reason,
        decided_on=decided_on,
        actor=actor,
        today=today,
        now=now,
    )


def receive(
    session: Session,
    *,
    claim_id: int,
    received_on: date,
    amount_fen: int,
    actor: Principal,
    today: date,
    now: datetime,
) -> ClaimReceipt:
    return get_program(_program_of(session, claim_id, actor)).receive(
        session,
        claim_id=claim_id,
        received_on=received_on,
        amount_fen=amount_fen,
        actor=actor,
        today=today,
        now=now,
    )


def receivable(session: Session, claim: Claim) -> int:
    """What the bank still owes the fund on the claim (XB-R1 distributions, XB-R2
    refunds, less receipts); 0 where the programme's returns are cash at once."""
    ids = [claim.id]
    return get_program(claim.program).receivable(
        repo.recoveries(session, ids)[claim.id],
        repo.clawbacks(session, ids)[claim.id],
        repo.receipts(session, ids)[claim.id],
    )


def step(
    session: Session,
    *,
    claim_id: int,
    stage: str,
    actor: Principal,
    today: date,
    now: datetime,
    approve: bool | None = None,
    comment: str = "",
    paid_on: date | None = None,
    findings: tuple[str, ...] = (),
    opinion: str = "",
    ineligible_at_grant: bool = False,
) -> Claim:
    """`act` with the stage's input as keywords (for scripts: the demo, the load data)."""
    given = StepInput(approve, comment, paid_on, tuple(findings), opinion, ineligible_at_grant)
    return act(
        session, claim_id=claim_id, stage=stage, step=given, actor=actor, today=today, now=now
    )
