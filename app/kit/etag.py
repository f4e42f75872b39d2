"""Entity tags: `ETag` on a document, `If-None-Match` → 304, `If-Match` → 412.

An object's ETag is a strong tag over the representation its GET answers (the canonical
JSON of the response body: sorted keys, no insignificant whitespace), so it changes
whenever anything a client can see changes, and a tag read from GET is the tag a
state-changing call compares against. A reviewer who acts with `If-Match: <tag>` on a
view that is no longer current is refused with 412 `precondition_failed` and nothing is
written; without `If-Match` the call is not conditional (API.md keeps working)."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import Header, Request, Response
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel

from app.errors import AppError

ETAG_HEADER = "ETag"
IF_MATCH_HEADER = "If-Match"
IF_NONE_MATCH_HEADER = "If-None-Match"


class PreconditionFailed(AppError):
    """The request carried `If-Match`, and the object's current `ETag` is another one:
    someone changed it since the caller read it. Nothing was written; read the object
    again (GET answers its current `ETag`) and decide on the current state."""

    status, code = 412, "precondition_failed"
    title, title_zh = "The object changed since you read it", "对象在读取后已被修改，请重新读取"


def canonical_json(payload: Any) -> bytes:
    """`payload` (a pydantic model, or what FastAPI would encode) as canonical JSON."""
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json")
    data = jsonable_encoder(payload)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def etag_of(payload: Any) -> str:
    """The strong ETag (quoted) of a representation: a digest of its canonical JSON."""
    return '"' + hashlib.sha256(canonical_json(payload)).hexdigest()[:32] + '"'


def _tags(header: str) -> list[str]:
    return [t.strip() for t in header.split(",") if t.strip()]


def _opaque(tag: str) -> str:
    """A tag without its weakness marker (weak comparison, RFC 9110 §8.8.3.2)."""
    return tag[2:] if tag.startswith("W/") else tag


def check_if_match(request: Request, current_etag: str) -> None:
    """Refuse with `PreconditionFailed` when the request has `If-Match` and none of its
    tags is `current_etag` (strong comparison; `*` matches an existing object). Call it
    before changing anything."""
    header = request.headers.get(IF_MATCH_HEADER)
    if header is None:
        return
    tags = _tags(header)
    if "*" in tags or current_etag in tags:
        return
    raise PreconditionFailed(
        f"If-Match {header} is not the object's current ETag {current_etag}: it changed "
        "since it was read; GET it again and retry on the current state",
        headers={ETAG_HEADER: current_etag},
    )


def not_modified(request: Request, etag: str) -> bool:
    """True when the request's `If-None-Match` names `etag` (or is `*`): answer 304."""
    header = request.headers.get(IF_NONE_MATCH_HEADER)
    if header is None:
        return False
    tags = _tags(header)
    return "*" in tags or _opaque(etag) in {_opaque(t) for t in tags}


def not_modified_response(etag: str) -> Response:
    """A 304 with no body, repeating the current `ETag`."""
    return Response(status_code=304, headers={ETAG_HEADER: etag})


# --- the headers in the document ---------------------------------------------------

ETAG_HEADER_DOC: dict[str, Any] = {
    "description": "strong entity tag of this representation; send it back as "
    "`If-None-Match` (304 when unchanged) or `If-Match` on a change (412 when stale)",
    "schema": {"type": "string"},
}

IfMatch = Annotated[
    str | None,
    Header(
        alias=IF_MATCH_HEADER,
        description="the `ETag` the caller last read; if the object has changed since, "
        "the call is refused with 412 `precondition_failed` and nothing is written. "
        "Optional — 可选：上次读取时的 ETag，对象已被修改则返回 412",
        examples=['"3f1c0e6a9b2d4c8e7f6a5b4c3d2e1f00"'],
    ),
]

IfNoneMatch = Annotated[
    str | None,
    Header(
        alias=IF_NONE_MATCH_HEADER,
        description="an `ETag` the caller holds; 304 with no body while it is current. "
        "可选：已持有的 ETag，未变化时返回 304",
        examples=['"3f1c0e6a9b2d4c8e7f6a5b4c3d2e1f00"'],
    ),
]


def etag_responses() -> dict[int | str, dict[str, Any]]:
    """`responses=` entries of a GET that answers an `ETag` and honours
    `If-None-Match` (merge with the route's `problems(...)`)."""
    return {
        200: {"headers": {ETAG_HEADER: ETAG_HEADER_DOC}},
        304: {
            "description": "Not modified: the `If-None-Match` tag is current (no body)",
            "headers": {ETAG_HEADER: ETAG_HEADER_DOC},
        },
    }


def if_match_responses(status: int = 200) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries of a state-changing call that honours `If-Match` and answers
    the object's new `ETag` on its success `status` (merge with the route's
    `problems(...)`, which lists `PreconditionFailed` for 412)."""
    return {status: {"headers": {ETAG_HEADER: ETAG_HEADER_DOC}}}
