"""The audit trail's capture: every insert, update and delete of a business record that
goes through the ORM, recorded from the session's flushes, with who did it (the
request's caller, or a label such as `system:seed`) and the request it belongs to.

How it works
------------
* `after_flush` (every `Session`): for each new, changed or deleted object of an audited
  table, one pending row — `after` (insert: every column), `before`/`after` (update: the
  changed columns only, from the ORM's attribute history), `before` (delete). Nothing is
  read from the database to build them.
* The pending rows are written with one statement just before the transaction
  commits (`before_commit`, after a last flush; the request boundary writes them
  itself, with the response status and a row for the request). They are therefore in
  the same transaction as the change: a refused request, rolled back, leaves none, and
  a rolled-back savepoint drops the rows captured inside it.
* Core statements bypass the ORM's events: the bulk writers of business rows (loans,
  enterprises) report what they inserted with `record_created`.

Not recorded (each is guarded or recorded elsewhere, or derived from a recorded row):
the ledger (entries, legs, accounts, chain head: append-only with their own hash chain),
idempotency records, log-in failures, revoked tokens (the logout request is recorded),
refused filings (written after a refused request's rollback), status histories
(`loan_transitions`, `claim_transitions`: the parent's status change is recorded),
day totals, repayment schedules, late instalments, the rows, differences and arrears
reports of a status file (its header row is recorded), controllers' person records (an
upsert), batch jobs and their items (the request that queued the job is recorded, and
the loans a job files are, as the submitting user's), and Core UPDATE/DELETE
statements (the quota's use counter, purges)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import Table, event, insert, text
from sqlalchemy.orm import Mapper, Session, SessionTransaction
from sqlalchemy.orm.attributes import NO_VALUE, instance_state

from app.kit.requestid import current_request_id
from app.models.audit import AuditEvent
from app.models.base import utcnow

_TABLE = cast(Table, AuditEvent.__table__)
_COLUMNS = ", ".join(c.name for c in _TABLE.columns if c.name != "id")
# the model's column names, no input
_PG_INSERT = text(
    f"INSERT INTO audit_events ({_COLUMNS}) SELECT {_COLUMNS} "  # noqa: S608
    "FROM json_populate_recordset(NULL::audit_events, CAST(:rows AS json))"
)

# session.info keys
REQUEST_KEY = "audit.request"  # RequestContext of the request the session serves
ACTOR_KEY = "audit.actor"  # Actor: who acts
_PENDING = "audit.pending"  # list[tuple[SessionTransaction | None, dict]]

# tables never recorded row by row (see the module's docstring)
EXCLUDED_TABLES = frozenset(
    {
        AuditEvent.__tablename__,
        "ledger_entries",
        "ledger_legs",
        "ledger_accounts",
        "ledger_chain_head",
        "idempotency_records",
        "login_failures",
        "revoked_tokens",
        "filing_refusals",
        "loan_transitions",
        "claim_transitions",
        "loan_day_totals",
        "loan_instalments",
        "loan_late_instalments",
        "status_report_rows",
        "status_report_differences",
        "batch_jobs",
        "batch_job_items",
        "alembic_version",
    }
)
# columns whose value is never copied into the trail (a change is still shown)
REDACTED = {"users": frozenset({"password_hash"}), "persons": frozenset({"id_hash"})}
REDACTED_VALUE = "[redacted]"
# longer text is recorded as its length and SHA-256 (a stored report, a document)
MAX_TEXT = 1000
# a bulk insert of more rows than this is one row listing the ids, not a row per record
BULK_DETAIL = 100
# what an insert of these is called
INSERT_ACTIONS = {"loan": "loan.filed", "claim": "claim.filed"}
REQUEST_ACTION = "request"
# successful requests that change no business state: no request row
UNRECORDED_OPERATIONS = frozenset({"login"})


@dataclass(frozen=True)
class Actor:
    label: str  # the username, or `system:seed`, `cli`, `system`
    user_id: int | None = None
    role: str | None = None


@dataclass(frozen=True)
class RequestContext:
    request_id: str | None
    method: str
    path: str
    operation_id: str | None
    route_path: str = ""  # the route's template, `/api/v1/claims/{claim_id}/city-review`


SYSTEM = Actor("system")
ANONYMOUS = Actor("anonymous")


def acting_as(session: Session, label: str) -> None:
    """Work done outside a request is recorded as `label` (`system:seed`, `cli`)."""
    session.info[ACTOR_KEY] = Actor(label[:64])


def set_user(session: Session, *, user_id: int, username: str, role: str) -> None:
    """The authenticated caller of the request this session serves."""
    session.info[ACTOR_KEY] = Actor(username[:64], user_id, role)


def start_request(
    session: Session, *, method: str, path: str, operation_id: str | None, route_path: str = ""
) -> None:
    """The request this session serves (the request boundary, app/kit/uow.py)."""
    session.info[REQUEST_KEY] = RequestContext(
        current_request_id(), method, path[:500], operation_id, route_path
    )


# --- values as JSON ---------------------------------------------------------------------
def plain(value: Any) -> Any:
    """A column value as JSON: money stays integer fen, dates ISO 8601, bytes and long
    text their length and SHA-256."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        if len(value) <= MAX_TEXT:
            return value
        return {"chars": len(value), "sha256": hashlib.sha256(value.encode()).hexdigest()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return str(value)


# --- what a mapped class looks like to the trail ----------------------------------------
@dataclass(frozen=True)
class _Shape:
    subject_type: str
    columns: tuple[str, ...]  # attribute keys of the table's columns
    pk: tuple[str, ...]
    redacted: frozenset[str]


_SHAPES: dict[Mapper[Any], _Shape | None] = {}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _shape(mapper: Mapper[Any]) -> _Shape | None:
    try:
        return _SHAPES[mapper]
    except KeyError:
        pass
    table = getattr(mapper.local_table, "name", None)
    shape: _Shape | None = None
    if table is not None and table not in EXCLUDED_TABLES:
        columns = tuple(p.key for p in mapper.column_attrs if len(p.columns) == 1)
        pk = tuple(mapper.get_property_by_column(c).key for c in mapper.primary_key)
        shape = _Shape(
            _snake(mapper.class_.__name__), columns, pk, REDACTED.get(table, frozenset())
        )
    _SHAPES[mapper] = shape
    return shape


def _value(shape: _Shape, key: str, value: Any) -> Any:
    return REDACTED_VALUE if key in shape.redacted else plain(value)


def _subject_id(values: Sequence[Any]) -> str | None:
    if any(v is None for v in values):
        return None
    return ",".join(str(v) for v in values)[:64]


def _update_action(subject_type: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    if "status" in after and isinstance(after["status"], str):
        return f"{subject_type}.{after['status']}"[:80]
    if subject_type == "user":
        if after.get("is_active") is False:
            return "user.disabled"
        if after.get("is_active") is True:
            return "user.enabled"
        if "role" in after:
            return "user.role_changed"
    return f"{subject_type}.updated"


# --- capture ----------------------------------------------------------------------------
def _pending(session: Session) -> list[tuple[SessionTransaction | None, dict[str, Any]]]:
    found: list[tuple[SessionTransaction | None, dict[str, Any]]] = session.info.setdefault(
        _PENDING, []
    )
    return found


def _add(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    tag = session.get_nested_transaction()
    _pending(session).extend((tag, row) for row in rows)


def _captured(session: Session) -> list[dict[str, Any]]:
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for obj in session.new:
        state = instance_state(obj)
        shape = _shape(state.mapper)
        if shape is None:
            continue
        d = state.dict
        after = {k: _value(shape, k, d[k]) for k in shape.columns if k in d}
        rows.append(
            {
                "occurred_at": now,
                "action": INSERT_ACTIONS.get(shape.subject_type, f"{shape.subject_type}.created"),
                "subject_type": shape.subject_type,
                "subject_id": _subject_id([d.get(k) for k in shape.pk]),
                "before": None,
                "after": after,
            }
        )
    for obj in session.dirty:
        state = instance_state(obj)
        shape = _shape(state.mapper)
        if shape is None or not state.committed_state:
            continue
        d, old = state.dict, state.committed_state
        before: dict[str, Any] = {}
        after = {}
        for key in shape.columns:
            if key not in old:
                continue
            was, now_value = old[key], d.get(key, NO_VALUE)
            if was is not NO_VALUE and now_value is not NO_VALUE and was == now_value:
                continue
            before[key] = None if was is NO_VALUE else _value(shape, key, was)
            # NO_VALUE now: set to a SQL expression, computed by the database
            after[key] = None if now_value is NO_VALUE else _value(shape, key, now_value)
        if not after:
            continue
        rows.append(
            {
                "occurred_at": now,
                "action": _update_action(shape.subject_type, before, after),
                "subject_type": shape.subject_type,
                "subject_id": _subject_id([d.get(k, old.get(k)) for k in shape.pk]),
                "before": before,
                "after": after,
            }
        )
    for obj in session.deleted:
        state = instance_state(obj)
        shape = _shape(state.mapper)
        if shape is None:
            continue
        d = state.dict
        rows.append(
            {
                "occurred_at": now,
                "action": f"{shape.subject_type}.deleted",
                "subject_type": shape.subject_type,
                "subject_id": _subject_id([d.get(k) for k in shape.pk]),
                "before": {k: _value(shape, k, d[k]) for k in shape.columns if k in d},
                "after": None,
            }
        )
    return rows


def record_created(
    session: Session,
    model: type[Any],
    items: Iterable[tuple[int | str, Mapping[str, Any]]],
    *,
    action: str | None = None,
) -> None:
    """Rows of `model` inserted by a Core statement (which the ORM's events do not see):
    (id, column values) each. Up to `BULK_DETAIL` of them, one audit row each like an
    ORM insert; more, one row naming the count and the ids."""
    from sqlalchemy import inspect

    shape = _shape(inspect(model))
    if shape is None:
        return
    listed = list(items)
    if not listed:
        return
    name = action or INSERT_ACTIONS.get(shape.subject_type, f"{shape.subject_type}.created")
    now = utcnow()
    if len(listed) > BULK_DETAIL:
        _add(
            session,
            [
                {
                    "occurred_at": now,
                    "action": name,
                    "subject_type": shape.subject_type,
                    "subject_id": None,
                    "before": None,
                    "after": {"count": len(listed), "ids": [plain(i) for i, _ in listed]},
                }
            ],
        )
        return
    _add(
        session,
        (
            {
                "occurred_at": now,
                "action": name,
                "subject_type": shape.subject_type,
                "subject_id": str(subject_id)[:64],
                "before": None,
                "after": {k: _value(shape, k, values[k]) for k in shape.columns if k in values}
                | {shape.pk[0]: plain(subject_id)},
            }
            for subject_id, values in listed
        ),
    )


def _actor(session: Session) -> Actor:
    actor = session.info.get(ACTOR_KEY)
    if isinstance(actor, Actor):
        return actor
    return ANONYMOUS if REQUEST_KEY in session.info else SYSTEM


def write(session: Session, *, status: int | None = None) -> int:
    """Write the pending rows (one INSERT) in the session's transaction; how many."""
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return 0
    actor = _actor(session)
    ctx = session.info.get(REQUEST_KEY)
    common = {
        "actor": actor.label,
        "actor_user_id": actor.user_id,
        "actor_role": actor.role,
        "request_id": ctx.request_id if ctx else None,
        "method": ctx.method if ctx else None,
        "path": ctx.path if ctx else None,
        "operation_id": ctx.operation_id if ctx else None,
        "status": status,
    }
    rows = [common | row for _, row in pending]
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # one statement, one round trip, however many rows (an executemany costs about a
        # round trip a row)
        conn.execute(_PG_INSERT, {"rows": json.dumps(rows, ensure_ascii=False, default=_json)})
    else:
        conn.execute(insert(_TABLE), rows)
    return len(rows)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


# a path's collection → the subject type its records have in the trail, where the
# plain singular is not it
_COLLECTIONS = {
    "runs": "report_run",
    "entries": "ledger_entry",
    "documents": "claim_document",
    "contributors": "fund_contributor",
    "status-reports": "status_report",
    "lpr-rates": "lpr_rate",
}


def _subject_type(collection: str) -> str:
    if collection in _COLLECTIONS:
        return _COLLECTIONS[collection]
    word = collection.replace("-", "_")
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") else word


def request_subject(
    route_path: str, path_params: Mapping[str, Any], location: str | None
) -> tuple[str | None, str | None]:
    """The object a request acted on: the one its path names (`/claims/{claim_id}/…` →
    claim; `/status-reports/{year}/{month}` → status_report `2026/3`), else the one its
    `Location` names (a created object: the last numeric segment and the collection
    before it, else the last two segments)."""
    segments = route_path.strip("/").split("/")
    for i, segment in enumerate(segments):
        if i > 0 and segment.startswith("{"):
            values = []
            for following in segments[i:]:
                if not following.startswith("{"):
                    break
                values.append(str(path_params.get(following[1:-1].split(":")[0], "")))
            return _subject_type(segments[i - 1])[:40], "/".join(values)[:64]
    if location:
        path = [p for p in urlsplit(location).path.split("/") if p]
        numeric = [i for i, p in enumerate(path) if p.isdigit() and i > 0]
        at = numeric[-1] if numeric else len(path) - 1
        if at > 0:
            return _subject_type(path[at - 1])[:40], path[at][:64]
    return None, None


def finish_request(
    session: Session,
    *,
    status: int,
    path_params: Mapping[str, Any],
    location: str | None,
) -> None:
    """At the end of a successful request, before its commit: flush, add the request's
    own row (a state-changing method only) and write everything with the status."""
    ctx = session.info.get(REQUEST_KEY)
    session.flush()
    if (
        ctx is not None
        and ctx.method not in ("GET", "HEAD", "OPTIONS")
        and ctx.operation_id not in UNRECORDED_OPERATIONS
    ):
        subject_type, subject_id = request_subject(ctx.route_path, path_params, location)
        after: dict[str, Any] = {"status": status}
        if location:
            after["location"] = location
        _add(
            session,
            [
                {
                    "occurred_at": utcnow(),
                    "action": REQUEST_ACTION,
                    "subject_type": subject_type,
                    "subject_id": subject_id,
                    "before": None,
                    "after": after,
                }
            ],
        )
    write(session, status=status)


# --- the session events -----------------------------------------------------------------
def _after_flush(session: Session, _flush_context: Any) -> None:
    rows = _captured(session)
    if rows:
        _add(session, rows)


def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint's rows are written with its outermost transaction
    if not session.info.get(_PENDING) and not (session.new or session.dirty or session.deleted):
        return
    session.flush()
    write(session)


def _within(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if not pending:
        return
    if previous.parent is None:  # the whole transaction: nothing of it was written
        session.info.pop(_PENDING, None)
    elif previous.nested:  # a savepoint: what was captured inside it is gone with it
        pending[:] = [(tag, row) for tag, row in pending if not _within(tag, previous)]


def install() -> None:
    """Listen on every Session (idempotent)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_soft_rollback", _after_soft_rollback)


install()
