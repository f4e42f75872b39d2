"""Refusals shared by the reference data and the users that point at it: a code naming
nothing recorded, and a field that a case requires or forbids (a city fund's region, a
bank user's bank). Each is one failure in a refusal's `errors`; the refusal's `code` is
its first failure's (app/errors.py `refusal`)."""

from __future__ import annotations

from app.errors import Unprocessable


class UnknownReference(Unprocessable):
    """The request names a region, bank, fund or other object by a code that is not
    recorded; `loc` says which field. Nothing was written."""

    code, title, title_zh = "unknown_reference", "Unknown reference", "引用的对象不存在"


class FieldRequired(Unprocessable):
    """A field the request may leave out in general is required in this case (a fund of
    kind `city` names its region; a user of role `bank` names its bank); `msg` says why."""

    code, title, title_zh = "field_required", "Field required in this case", "此情形下为必填项"


class FieldNotAllowed(Unprocessable):
    """A field is sent that this case does not take (a parent for a fund that is not a
    sub-fund; a bank for a user who is not a bank user); `msg` says why."""

    code, title, title_zh = (
        "field_not_allowed",
        "Field not allowed in this case",
        "此情形下不得填写",
    )
