"""The one place that mounts routers."""

from __future__ import annotations

from fastapi import APIRouter

from app.audit.endpoints import router as audit_router
from app.auth.endpoints import router as auth_router
from app.calendar.endpoints import router as calendar_router
from app.claims.endpoints import router as claims_router
from app.evaluations.endpoints import router as evaluations_router
from app.ledger.endpoints import router as ledger_router
from app.library.endpoints import router as library_router
from app.loans.endpoints import router as loans_router
from app.loans.refusals import router as loans_refusals_router
from app.loans.watch import router as loans_watch_router
from app.reference.endpoints import router as reference_router
from app.reports.endpoints import router as reports_router
from app.status_reports.endpoints import router as status_reports_router

API_PREFIX = "/api/v1"

api_router = APIRouter(prefix=API_PREFIX)
api_router.include_router(auth_router)
api_router.include_router(reference_router)
api_router.include_router(library_router)
api_router.include_router(loans_watch_router)  # before /loans/{loan_id}
api_router.include_router(loans_refusals_router)  # before /loans/{loan_id}
api_router.include_router(loans_router)
api_router.include_router(ledger_router)
api_router.include_router(claims_router)
api_router.include_router(evaluations_router)
api_router.include_router(status_reports_router)
api_router.include_router(reports_router)
api_router.include_router(calendar_router)
api_router.include_router(audit_router)
