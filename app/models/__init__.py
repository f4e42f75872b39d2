"""All ORM tables. Importing this package registers every table on `Base.metadata`."""

from app.models.agreement import Agreement, AgreementEvent
from app.models.base import Base
from app.models.calendar import CalendarDay, CalendarPublication
from app.models.claim import (
    Claim,
    ClaimClawback,
    ClaimDocument,
    ClaimReceipt,
    ClaimRecovery,
    ClaimReturn,
    ClaimTransition,
)
from app.models.enterprise import Enterprise
from app.models.evaluation import QuarterBankResult, QuarterEvaluation
from app.models.idempotency import IdempotencyRecord
from app.models.ledger import LedgerAccount, LedgerChainHead, LedgerEntry, LedgerLeg
from app.models.library import LibraryEvent
from app.models.loan import Loan, LoanEvent
from app.models.quota import ProgramQuota
from app.models.reference import Bank, Fund, FundContributor, FundEvent, LprRate, Region
from app.models.repayment import LoanRepayment
from app.models.rollup import LoanDayTotal
from app.models.user import User

__all__ = [
    "Agreement",
    "AgreementEvent",
    "Bank",
    "Base",
    "CalendarDay",
    "CalendarPublication",
    "Claim",
    "ClaimClawback",
    "ClaimDocument",
    "ClaimReceipt",
    "ClaimRecovery",
    "ClaimReturn",
    "ClaimTransition",
    "Enterprise",
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
    "LoanRepayment",
    "LprRate",
    "ProgramQuota",
    "QuarterBankResult",
    "QuarterEvaluation",
    "Region",
    "User",
]
