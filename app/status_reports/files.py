"""Reading a monthly status file (XB-Rep): CSV or JSON, one row per loan contract.

Both formats carry the same six fields per row: `contract_no`, `outstanding`,
`overdue_since`, `principal_overdue`, `interest_overdue`, `status`. Amounts are yuan
strings with at most two decimals (M-1), `overdue_since` a `YYYY-MM-DD` date or empty
(CSV) / null (JSON), `status` one of `current`, `overdue`, `settled`, `written_off`.

- CSV (`text/csv`): UTF-8, a byte-order mark allowed; a header row naming the six
  columns in any order; blank lines are skipped.
- JSON (`application/json`): `{"rows": [{...}, ...]}`; `overdue_since` may be null,
  empty or left out; amounts must be strings (a JSON number is refused).

Rows are numbered from 1 in the order of the file (the CSV header is not a row). Every
malformed row is reported at once; a file with any error is refused as a whole.

The content's SHA-256 (`content_sha256`) is taken over the parsed rows in a canonical
form, not over the bytes: the rows sorted by contract number, each as its contract
number, amounts in fen, the date and the status. CSV or JSON, a byte-order mark, row
order, line endings, spaces around a cell and `"100"` vs `"100.00"` make no difference."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.errors import AppError, Unprocessable, Violation
from app.kit.money import MoneyFormatError, parse_yuan

FIELDS = (
    "contract_no",
    "outstanding",
    "overdue_since",
    "principal_overdue",
    "interest_overdue",
    "status",
)
AMOUNTS = ("outstanding", "principal_overdue", "interest_overdue")
STATUSES = ("current", "overdue", "settled", "written_off")
CSV_TYPE, JSON_TYPE = "text/csv", "application/json"
MEDIA_TYPES = (CSV_TYPE, JSON_TYPE)

# A bank's whole book in one file: 200,000 rows, 20 MiB (100,000 JSON rows take ~15 MiB)
MAX_ROWS = 200_000
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_LISTED_ERRORS = 1_000  # a refusal lists this many failures and counts the rest
MAX_CONTRACT_NO = 64
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CANONICAL_TAG = "status-file/1"


class UnsupportedMediaType(AppError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class FileTooLarge(AppError):
    status, code, title = 413, "payload_too_large", "Payload too large"


@dataclass(frozen=True, slots=True)
class FileRow:
    row_no: int
    contract_no: str
    outstanding_fen: int
    overdue_since: date | None
    principal_overdue_fen: int
    interest_overdue_fen: int
    status: str

    def canonical(self) -> str:
        since = self.overdue_since.isoformat() if self.overdue_since else ""
        return "\t".join(
            (
                self.contract_no,
                str(self.outstanding_fen),
                since,
                str(self.principal_overdue_fen),
                str(self.interest_overdue_fen),
                self.status,
            )
        )


def media_type_of(content_type: str | None) -> str:
    """`text/csv` or `application/json` from a Content-Type header (parameters such as
    `charset=utf-8` are ignored); 415 for anything else."""
    media = (content_type or "").partition(";")[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"send the status file as {CSV_TYPE} or {JSON_TYPE}, not {media or 'no type'}",
            [
                Violation(
                    loc=("header", "Content-Type"),
                    msg=f"must be {CSV_TYPE} or {JSON_TYPE}",
                    code="unsupported_media_type",
                )
            ],
        )
    return media


def content_sha256(rows: list[FileRow]) -> str:
    """The SHA-256 of the rows' canonical form (see the module's docstring)."""
    lines = sorted(r.canonical() for r in rows)
    return hashlib.sha256("\n".join([_CANONICAL_TAG, *lines]).encode()).hexdigest()


def parse(body: bytes, media_type: str, *, month_end: date) -> list[FileRow]:
    """The file's rows, or one 422 naming every malformed row (row number, field,
    message). `month_end` is the last day of the month reported on: no overdue date may
    be after it."""
    if len(body) > MAX_FILE_BYTES:
        raise FileTooLarge(
            f"a status file may have at most {MAX_FILE_BYTES} bytes; this one has {len(body)}"
        )
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _file_error(
            f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})", "not_utf8"
        ) from None
    reader = _csv_rows if media_type == CSV_TYPE else _json_rows
    errors: list[Violation] = []
    rows: list[FileRow] = []
    bad_rows: set[int] = set()
    for row_no, raw, where in reader(text):
        row = _row(row_no, raw, where, errors)
        if row is None:
            bad_rows.add(row_no)
        else:
            rows.append(row)
    for row_no in _consistency(rows, month_end, errors):
        bad_rows.add(row_no)
    if errors:
        raise refusal(errors, len(bad_rows))
    return rows


def refusal(errors: list[Violation], bad_rows: int) -> Unprocessable:
    """The file refused as a whole: one 422 listing the rows' errors (at most
    MAX_LISTED_ERRORS of them, the rest counted)."""
    listed = errors[:MAX_LISTED_ERRORS]
    more = len(errors) - len(listed)
    tail = f"; the first {len(listed)} are listed" if more else ""
    return Unprocessable(
        f"the status file has {len(errors)} error(s) in {bad_rows} row(s){tail}; "
        "nothing was recorded",
        listed,
        code="status_file_refused",
        rule="XB-Rep",
    )


# --- the two formats -------------------------------------------------------------------
Raw = tuple[int, dict[str, Any], str]


def _file_error(msg: str, code: str, loc: tuple[str | int, ...] = ("body",)) -> Unprocessable:
    return Unprocessable(
        msg, [Violation(loc=loc, msg=msg, code=code)], code="status_file_refused", rule="XB-Rep"
    )


def _too_many(count: int) -> Unprocessable:
    return _file_error(
        f"a status file may have at most {MAX_ROWS:,} rows; split the book or contact the "
        f"fund manager (more than {count - 1:,} rows sent)",
        "too_many_rows",
    )


def _csv_rows(text: str) -> list[Raw]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(c.strip() for c in header):
            raise _file_error(
                f"the file has no header row; it needs the columns {', '.join(FIELDS)}",
                "missing_header",
                ("body", "header"),
            )
        names = [c.strip().lower() for c in header]
        _check_header(names)
        out: list[Raw] = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            row_no = len(out) + 1
            if row_no > MAX_ROWS:
                raise _too_many(row_no)
            where = f" (line {reader.line_num})"
            if len(cells) != len(names):
                out.append(
                    (row_no, {"": f"has {len(cells)} cells, the header {len(names)}"}, where)
                )
                continue
            out.append((row_no, dict(zip(names, cells, strict=True)), where))
    except csv.Error as exc:
        raise _file_error(f"the CSV cannot be read: {exc}", "invalid_csv") from None
    return out


def _check_header(names: list[str]) -> None:
    problems = []
    unknown = [n for n in names if n not in FIELDS]
    missing = [f for f in FIELDS if f not in names]
    twice = sorted({n for n in names if names.count(n) > 1})
    if unknown:
        problems.append(f"unknown column(s) {', '.join(repr(n) for n in unknown)}")
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if twice:
        problems.append(f"column(s) named twice: {', '.join(twice)}")
    if problems:
        raise Unprocessable(
            "the header row must name the columns " + ", ".join(FIELDS),
            [Violation(loc=("body", "header"), msg=p, code="invalid_header") for p in problems],
            code="status_file_refused",
            rule="XB-Rep",
        )


def _json_rows(text: str) -> list[Raw]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise _file_error(f"the body is not valid JSON: {exc}", "invalid_json") from None
    except RecursionError:  # nested deeper than the decoder goes; a file is two levels
        raise _file_error(
            'the body is nested too deeply to be a status file {"rows": [...]}', "invalid_json"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        raise _file_error('the body must be an object {"rows": [...]}', "invalid_json")
    extra = sorted(k for k in doc if k != "rows")
    if extra:
        raise _file_error(
            f'unknown field(s) {", ".join(extra)}; the body is {{"rows": [...]}}',
            "unknown_field",
        )
    items = doc["rows"]
    if len(items) > MAX_ROWS:
        raise _too_many(len(items))
    out: list[Raw] = []
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            out.append((i, {"": "must be an object with the fields " + ", ".join(FIELDS)}, ""))
        else:
            out.append((i, item, ""))
    return out


# --- one row ---------------------------------------------------------------------------
def _row(row_no: int, raw: dict[str, Any], where: str, errors: list[Violation]) -> FileRow | None:
    before = len(errors)

    def fail(field: str, msg: str, code: str) -> None:
        loc: tuple[str | int, ...] = ("body", "rows", row_no) + ((field,) if field else ())
        errors.append(Violation(loc=loc, msg=f"{msg}{where}", code=code))

    if "" in raw:  # the row itself is unusable
        fail("", str(raw[""]), "invalid_row")
        return None
    for key in raw:
        if key not in FIELDS:
            fail(str(key), "unknown field", "unknown_field")
    contract = _text(raw.get("contract_no"))
    if raw.get("contract_no") is not None and not isinstance(raw.get("contract_no"), str):
        fail("contract_no", "must be a string", "invalid_contract_no")
    elif contract is None:
        fail("contract_no", "required: the loan's contract number", "missing_field")
    elif not contract.isprintable() or len(contract) > MAX_CONTRACT_NO:
        fail(
            "contract_no",
            f"must be 1–{MAX_CONTRACT_NO} printable characters",
            "invalid_contract_no",
        )
    amounts: dict[str, int] = {}
    for field in AMOUNTS:
        value = raw.get(field)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            fail(field, 'required: a yuan amount such as "0.00"', "missing_field")
            continue
        try:
            amounts[field] = parse_yuan(value)
        except MoneyFormatError as exc:
            fail(field, str(exc), "invalid_amount")
    since: date | None = None
    value = raw.get("overdue_since")
    if value is not None and not isinstance(value, str):
        fail("overdue_since", "must be a date YYYY-MM-DD, empty or null", "invalid_date")
    elif value is not None and value.strip():
        try:
            if not _DATE.fullmatch(value.strip()):
                raise ValueError
            since = date.fromisoformat(value.strip())
        except ValueError:
            fail("overdue_since", f"{value!r} is not a date YYYY-MM-DD", "invalid_date")
    status = raw.get("status")
    status = status.strip() if isinstance(status, str) else status
    if status not in STATUSES:
        fail("status", f"{status!r} is not one of {', '.join(STATUSES)}", "invalid_status")
    if len(errors) > before:
        return None
    assert contract is not None and isinstance(status, str)
    return FileRow(
        row_no=row_no,
        contract_no=contract,
        outstanding_fen=amounts["outstanding"],
        overdue_since=since,
        principal_overdue_fen=amounts["principal_overdue"],
        interest_overdue_fen=amounts["interest_overdue"],
        status=status,
    )


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def _consistency(rows: list[FileRow], month_end: date, errors: list[Violation]) -> set[int]:
    """Checks across a row's fields and across rows; the row numbers that fail."""
    bad: set[int] = set()
    first: dict[str, int] = {}

    def fail(row: FileRow, field: str, msg: str, code: str) -> None:
        errors.append(Violation(loc=("body", "rows", row.row_no, field), msg=msg, code=code))
        bad.add(row.row_no)

    for row in rows:
        seen = first.setdefault(row.contract_no, row.row_no)
        if seen != row.row_no:
            fail(
                row,
                "contract_no",
                f"contract {row.contract_no} is also in row {seen}: one row per contract",
                "duplicate_contract",
            )
        owing = row.principal_overdue_fen > 0 or row.interest_overdue_fen > 0
        if row.overdue_since is not None and row.overdue_since > month_end:
            fail(
                row,
                "overdue_since",
                f"{row.overdue_since} is after the month end {month_end}",
                "overdue_since_after_month_end",
            )
        if row.overdue_since is not None and not owing:
            fail(
                row,
                "overdue_since",
                "overdue_since is set but principal and interest overdue are both 0",
                "overdue_since_without_amounts",
            )
        if row.overdue_since is None and owing:
            fail(
                row,
                "overdue_since",
                "principal or interest is overdue, so overdue_since (the first day in "
                "arrears) is required",
                "overdue_amounts_without_since",
            )
    return bad
