"""All ORM tables. Importing this package registers every table on `Base.metadata`."""

from app.models.agreement import Agreement, AgreementEvent
from app.models.arrears import (
    DelinquencyReport,
    LoanInstalment,
    LoanInterestPayment,
    LoanLateInstalment,
    StatusReport,
    StatusReportDifference,
    StatusReportRow,
)
from app.models.audit import AuditEvent
from app.models.base import Base
from app.models.batch_job import BatchJob, BatchJobItem
from app.models.calendar import CalendarDay, CalendarPublication
from app.models.claim import (
    Claim,
    ClaimClawback,
    ClaimDocument,
    ClaimReceipt,
    ClaimRecovery,
    ClaimReturn,
    ClaimShare,
    ClaimTransition,
)
from app.models.enterprise import Enterprise
from app.models.evaluation import QuarterBankResult, QuarterEvaluation
from app.models.idempotency import IdempotencyRecord
from app.models.ledger import LedgerAccount, LedgerChainHead, LedgerEntry, LedgerLeg
from app.models.library import LibraryEvent
from app.models.loan import Loan, LoanEvent, LoanTransition
from app.models.person import Person
from app.models.quota import ProgramQuota
from app.models.reference import (
    Bank,
    Fund,
    FundContributor,
    FundEvent,
    LprRate,
    ProgramRecord,
    Region,
)
from app.models.repayment import LoanRepayment
from app.models.report import FilingRefusal, ReportRun, ReportSubmission
from app.models.rollup import LoanDayTotal
from app.models.user import LoginFailure, RevokedToken, User

__all__ = [
    "Agreement",
    "AgreementEvent",
    "AuditEvent",
    "Bank",
    "Base",
    "BatchJob",
    "BatchJobItem",
    "CalendarDay",
    "CalendarPublication",
    "Claim",
    "ClaimClawback",
    "ClaimDocument",
    "ClaimReceipt",
    "ClaimRecovery",
    "ClaimReturn",
    "ClaimShare",
    "ClaimTransition",
    "DelinquencyReport",
    "Enterprise",
    "FilingRefusal",
    "Fund",
    "FundContributor",
    "FundEvent",
    "IdempotencyRecord",
    "LedgerAccount",
    "LedgerChainHead",
    "LedgerEntry",
    "LedgerLeg",
    "LibraryEvent",
    "Loan",
    "LoanDayTotal",
    "LoanEvent",
    "LoanInstalment",
    "LoanInterestPayment",
    "LoanLateInstalment",
    "LoanRepayment",
    "LoanTransition",
    "LoginFailure",
    "LprRate",
    "Person",
    "ProgramQuota",
    "ProgramRecord",
    "QuarterBankResult",
    "QuarterEvaluation",
    "Region",
    "ReportRun",
    "ReportSubmission",
    "RevokedToken",
    "StatusReport",
    "StatusReportDifference",
    "StatusReportRow",
    "User",
]

# every session records the audit trail (app/audit/capture.py); installed once the
# tables above are mapped
from app.audit import capture as _audit_capture  # noqa: F401
