"""`/problems/{code}`: the page a problem's `type` URI names.

Every code a client can receive is owned by one error class (app/errors.py `ERRORS`);
its page gives the status, the English and Chinese titles, the SPEC rule and what the
code means, and lists the operations whose documentation declares it. HTML for people,
JSON (`Accept: application/json`) for tools."""

from __future__ import annotations

import html
import inspect
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from app.errors import ERRORS, AppError, NotFound, problems

router = APIRouter()


class ProblemTypeOut(BaseModel):
    code: str
    status: int
    title: str
    title_zh: str
    rule: str | None = Field(None, description="the SPEC rule the code rests on, if one")
    description: str
    operations: list[str] = Field(
        description="`operationId`s whose documentation declares this code"
    )


class UnknownProblem(NotFound):
    """No error code of this name exists."""

    code, title, title_zh = "unknown_problem_type", "Unknown problem type", "未知的错误类型"


def _describe(error: type[AppError]) -> str:
    doc = error.__doc__ if "__doc__" in error.__dict__ else None
    return inspect.cleandoc(doc) if doc else error.title


def _operations(request: Request) -> dict[str, list[str]]:
    by_code: dict[str, list[str]] = {}
    for methods in request.app.openapi()["paths"].values():
        for operation in methods.values():
            for response in operation.get("responses", {}).values():
                for code in response.get("x-problem-codes", []):
                    by_code.setdefault(code, []).append(operation["operationId"])
    return by_code


def _out(error: type[AppError], operations: list[str]) -> ProblemTypeOut:
    return ProblemTypeOut(
        code=error.code,
        status=error.status,
        title=error.title,
        title_zh=error.title_zh,
        rule=error.rule,
        description=_describe(error),
        operations=sorted(set(operations)),
    )


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


_STYLE = (
    "body{font-family:'Noto Sans CJK SC',system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
    "padding:0 1rem;line-height:1.5}code{background:#f3f3f3;padding:0 .2rem}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;"
    "text-align:left}"
)


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>'
        f"{html.escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


_HTML = {"text/html": {"schema": {"type": "string"}}}


@router.get(
    "/problems",
    tags=["problems"],
    summary="Every error code 错误代码一览",
    description="Every `code` a problem response can carry, with its status, titles and "
    "rule. HTML, or JSON with `Accept: application/json`.",
    response_model=list[ProblemTypeOut],
    responses={200: {"content": _HTML}},
)
def problem_types(request: Request) -> Response:
    ops = _operations(request)
    items = [_out(e, ops.get(code, [])) for code, e in sorted(ERRORS.items())]
    if _wants_json(request):
        return JSONResponse([i.model_dump() for i in items])
    rows = "".join(
        f'<tr><td><a href="/problems/{html.escape(i.code)}"><code>{html.escape(i.code)}</code>'
        f"</a></td><td>{i.status}</td><td>{html.escape(i.title)}</td>"
        f"<td>{html.escape(i.title_zh)}</td><td>{html.escape(i.rule or '')}</td></tr>"
        for i in items
    )
    return _page(
        "Error codes 错误代码",
        "<h1>Error codes 错误代码</h1><p>Every error is <code>application/problem+json</code>; "
        "its <code>code</code> is one of these.</p><table><tr><th>code</th><th>status</th>"
        f"<th>title</th><th>中文</th><th>rule</th></tr>{rows}</table>",
    )


@router.get(
    "/problems/{code}",
    tags=["problems"],
    summary="One error code 错误代码说明",
    description="What a problem `type` (`/problems/{code}`) means. HTML, or JSON with "
    "`Accept: application/json`.",
    response_model=ProblemTypeOut,
    responses={200: {"content": _HTML}, **problems(UnknownProblem)},
)
def problem_type(
    request: Request, code: Annotated[str, Path(max_length=100, pattern=r"^[a-z0-9_]+$")]
) -> Response:
    error = ERRORS.get(code)
    if error is None:
        raise UnknownProblem(f"no error code {code!r}; see /problems for every code")
    item = _out(error, _operations(request).get(code, []))
    if _wants_json(request):
        return JSONResponse(item.model_dump())
    ops = "".join(f"<li><code>{html.escape(o)}</code></li>" for o in item.operations)
    rule = f"<p>Rule 规则: <b>{html.escape(item.rule)}</b></p>" if item.rule else ""
    return _page(
        f"{item.code} · {item.title}",
        f"<p><a href='/problems'>All codes 全部错误代码</a></p>"
        f"<h1><code>{html.escape(item.code)}</code></h1>"
        f"<p><b>{item.status}</b> · {html.escape(item.title)} · {html.escape(item.title_zh)}</p>"
        f"{rule}<p>{html.escape(item.description)}</p>"
        f"<h2>Returned by 可能返回此错误的操作</h2><ul>{ops or '<li>-</li>'}</ul>",
    )
