"""`GET /audit`, `GET /audit/{event_id}`: the append-only audit trail, for regulators
and admins (API.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.auth.principal import Principal, require_roles
from app.db import get_session
from app.errors import NotFound, ValidationFailed, Violation, problems
from app.kit.pagination import PAGE_REFUSALS, ObjectId, Page, PageParams, page_params, paginate
from app.kit.uow import TransactionalRoute
from app.models import AuditEvent

router = APIRouter(route_class=TransactionalRoute)
SessionDep = Annotated[Session, Depends(get_session)]
Reader = Annotated[Principal, Depends(require_roles("regulator", "admin"))]

# the instants a filter may name (a year 1 with an offset cannot even be converted to UTC)
EARLIEST, LATEST = datetime(1950, 1, 1, tzinfo=UTC), datetime(2199, 12, 31, tzinfo=UTC)


class AuditEventNotFound(NotFound):
    title, title_zh = "Audit event not found", "审计记录不存在"


class AuditEventOut(BaseModel):
    """One change or one request, as recorded in the same transaction."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime = Field(description="when, UTC 发生时间")
    actor: str = Field(
        description="who: the caller's username, or `system:seed`, `cli`, `system` for work "
        "outside a request 操作人",
        examples=["city_nanjing"],
    )
    actor_user_id: int | None = Field(description="the caller's user id 用户编号")
    actor_role: str | None = Field(description="the caller's role 角色", examples=["bank"])
    request_id: str | None = Field(
        description="the request's `X-Request-ID` (null outside HTTP) 请求编号"
    )
    method: str | None = Field(examples=["POST"])
    path: str | None = Field(examples=["/api/v1/claims/7/city-review"])
    operation_id: str | None = Field(
        description="the OpenAPI operation 接口", examples=["city_review"]
    )
    action: str = Field(
        description="`<subject>.created` / `.updated` / `.deleted`, `<subject>.<new status>` "
        "when a status changed (`claim.province_reviewed`), `loan.filed`, `user.disabled`, or "
        "`request` for the request's own row 动作",
        examples=["claim.city_reviewed"],
    )
    subject_type: str | None = Field(description="the record's kind 对象类型", examples=["claim"])
    subject_id: str | None = Field(
        description="its key (composite keys joined by `,`) 对象编号", examples=["7"]
    )
    before: dict[str, Any] | None = Field(
        description="an update: the changed columns' old values; a delete: every column. "
        "Values as stored — money in integer fen (`…_fen`) 变更前"
    )
    after: dict[str, Any] | None = Field(
        description="an insert: every column; an update: the changed columns' new values; "
        "the request row: `status` and `location` 变更后"
    )
    status: int | None = Field(description="the request's HTTP status 响应状态码", examples=[200])


def _instant(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if not EARLIEST.year <= value.year <= LATEST.year:
        raise ValidationFailed(
            f"{name} must lie in {EARLIEST.year}–{LATEST.year}",
            [Violation(loc=("query", name), msg=f"out of range {EARLIEST.year}–{LATEST.year}")],
        )
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def events_query(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    action: str | None = None,
    operation_id: str | None = None,
    request_id: str | None = None,
) -> Select[Any]:
    stmt = select(AuditEvent)
    if since is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.occurred_at <= until)
    if actor is not None:
        stmt = stmt.where(AuditEvent.actor == actor)
    if subject_type is not None:
        stmt = stmt.where(AuditEvent.subject_type == subject_type)
    if subject_id is not None:
        stmt = stmt.where(AuditEvent.subject_id == subject_id)
    if action is not None:
        if action.endswith(".*"):
            stmt = stmt.where(AuditEvent.action.like(_like_prefix(action[:-1]), escape="\\"))
        else:
            stmt = stmt.where(AuditEvent.action == action)
    if operation_id is not None:
        stmt = stmt.where(AuditEvent.operation_id == operation_id)
    if request_id is not None:
        stmt = stmt.where(AuditEvent.request_id == request_id)
    return stmt


def _text(description: str, example: str, max_length: int = 64) -> Any:
    return Query(min_length=1, max_length=max_length, description=description, examples=[example])


@router.get(
    "/audit",
    summary="The audit trail 审计日志 (newest first)",
    description="Regulators and admins. Every change of a business record (loans, claims, "
    "agreements, banks, enterprises, users, funds, contributions, recoveries, status "
    "files, evaluations, report runs …) and every successful state-changing request, "
    "recorded in the same transaction as the change — a refused request leaves none — "
    "with who, when, the request id and the values before and after. Append-only: the "
    "database refuses UPDATE, DELETE (and TRUNCATE). Filters combine; `action` ending "
    "in `.*` matches a prefix (`claim.*`). 每一次业务数据变更与成功的写请求：操作人、时间、"
    "请求编号、变更前后的值；只增不改。",
    responses=problems(*PAGE_REFUSALS),
)
def list_events(
    session: SessionDep,
    _: Reader,
    page: Annotated[PageParams, Depends(page_params)],
    since: Annotated[
        datetime | None,
        Query(
            description="from this instant, inclusive (ISO 8601; UTC when no offset) 起始时间",
            examples=["2026-03-01T00:00:00+08:00"],
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        Query(
            description="up to this instant, inclusive 截止时间",
            examples=["2026-03-31T23:59:59+08:00"],
        ),
    ] = None,
    actor: Annotated[
        str | None, _text("the caller's username, or a label such as `system:seed` 操作人", "admin")
    ] = None,
    subject_type: Annotated[
        str | None, _text("the record's kind 对象类型", "claim", max_length=40)
    ] = None,
    subject_id: Annotated[str | None, _text("the record's key 对象编号", "7")] = None,
    action: Annotated[
        str | None,
        _text("the action, or a prefix ending in `.*` 动作", "claim.*", max_length=80),
    ] = None,
    operation_id: Annotated[
        str | None, _text("the request's operation 接口", "city_review", max_length=100)
    ] = None,
    request_id: Annotated[
        str | None, _text("the request's `X-Request-ID` 请求编号", "3f2c9a0e5b7d4e1f")
    ] = None,
) -> Page[AuditEventOut]:
    stmt = events_query(
        since=_instant("since", since),
        until=_instant("until", until),
        actor=actor,
        subject_type=subject_type,
        subject_id=subject_id,
        action=action,
        operation_id=operation_id,
        request_id=request_id,
    )
    rows, cursor = paginate(session, stmt, AuditEvent.id, page, descending=True)
    return Page(items=[AuditEventOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get(
    "/audit/{event_id}",
    summary="One audit event 审计记录",
    description="Regulators and admins. 单条审计记录。",
    responses=problems(AuditEventNotFound),
)
def get_event(session: SessionDep, _: Reader, event_id: ObjectId) -> AuditEventOut:
    event = session.get(AuditEvent, event_id)
    if event is None:
        raise AuditEventNotFound(f"audit event {event_id} not found")
    return AuditEventOut.model_validate(event)
