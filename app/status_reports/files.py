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

from app.errors import PayloadTooLarge, Unprocessable, UnsupportedMediaType, Violation
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


class FileTooLarge(PayloadTooLarge):
    """A status file larger than the request limit."""


class StatusFileRefused(Unprocessable):
    """The status file is refused as a whole and nothing was recorded: `errors` names
    every failure (where: `["body", "rows", <row>, <field>]`, the header, or the file;
    each with its own code). Correct them all and send the file again (XB-Rep)."""

    code, rule = "status_file_refused", "XB-Rep"
    title, title_zh = "Status file refused", "月度报送文件未通过校验"


# --- what `errors` of a refused file name (each code's page says what it means) --------
class NotUtf8(Unprocessable):
    """The file is not UTF-8 text (a byte-order mark is allowed)."""

    code = "not_utf8"
    title, title_zh = "Not UTF-8 text", "文件不是 UTF-8 编码的文本"


class TooManyRows(Unprocessable):
    """The file has more rows than one file may carry; split the book or contact the fund
    manager."""

    code = "too_many_rows"
    title, title_zh = "Too many rows", "文件行数超过上限"


class MissingHeader(Unprocessable):
    """A CSV status file starts with a header row naming its six columns."""

    code = "missing_header"
    title, title_zh = "No header row", "CSV 文件缺少表头行"


class InvalidCsv(Unprocessable):
    """The CSV cannot be read (e.g. an unterminated quote)."""

    code = "invalid_csv"
    title, title_zh = "CSV cannot be read", "CSV 格式错误，无法读取"


class InvalidHeader(Unprocessable):
    """The CSV header names an unknown column, lacks one of the six, or names one twice."""

    code = "invalid_header"
    title, title_zh = "Invalid header row", "表头列名有误"


class InvalidJson(Unprocessable):
    """The JSON body does not parse, or is not an object `{"rows": [...]}`."""

    code = "invalid_json"
    title, title_zh = "Not a JSON status file", 'JSON 格式错误或不是 {"rows": [...]}'


class UnknownField(Unprocessable):
    """A field (or a key of the JSON body) that a status file does not have."""

    code = "unknown_field"
    title, title_zh = "Unknown field", "未知字段"


class InvalidRow(Unprocessable):
    """A row that cannot be read at all: a CSV line with another number of cells than
    the header, a JSON item that is not an object."""

    code = "invalid_row"
    title, title_zh = "Unusable row", "该行格式错误，无法读取"


class InvalidContractNo(Unprocessable):
    """`contract_no` is not a string of 1–64 printable characters."""

    code = "invalid_contract_no"
    title, title_zh = "Invalid contract number", "合同编号格式错误"


class MissingField(Unprocessable):
    """A required field of the row is missing or empty (`contract_no`, or an amount:
    give `"0.00"` for none)."""

    code = "missing_field"
    title, title_zh = "Required field missing", "缺少必填字段"


class InvalidAmount(Unprocessable):
    """An amount is not a yuan string with at most two decimals (M-1); a JSON number is
    refused."""

    code = "invalid_amount"
    title, title_zh = "Invalid amount", "金额格式错误（元，最多两位小数）"


class InvalidStatus(Unprocessable):
    """`status` is not one of `current`, `overdue`, `settled`, `written_off`."""

    code = "invalid_status"
    title, title_zh = "Invalid status", "状态取值无效"


class DuplicateContract(Unprocessable):
    """The same contract is in two rows: one row per contract."""

    code = "duplicate_contract"
    title, title_zh = "Contract listed twice", "同一合同出现在多行"


class OverdueSinceAfterMonthEnd(Unprocessable):
    """`overdue_since` is after the last day of the month reported on."""

    code = "overdue_since_after_month_end"
    title, title_zh = "Overdue date after the month end", "逾期起始日晚于报送月份月末"


class OverdueSinceWithoutAmounts(Unprocessable):
    """`overdue_since` is set but principal and interest overdue are both 0."""

    code = "overdue_since_without_amounts"
    title, title_zh = "Overdue date without amounts", "有逾期起始日但逾期金额均为零"


class OverdueAmountsWithoutSince(Unprocessable):
    """Principal or interest is overdue, so `overdue_since` (the first day in arrears) is
    required."""

    code = "overdue_amounts_without_since"
    title, title_zh = "Overdue amounts without a date", "有逾期金额但缺少逾期起始日"


# `invalid_date` (a date that is not YYYY-MM-DD) is the code of app.claims.steps'
# InvalidStepDate: one code, one class
INVALID_DATE = "invalid_date"


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
                UnsupportedMediaType.violation(
                    f"must be {CSV_TYPE} or {JSON_TYPE}", "header", "Content-Type"
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
            f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})", NotUtf8
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


def refusal(errors: list[Violation], bad_rows: int) -> StatusFileRefused:
    """The file refused as a whole: one 422 `status_file_refused` listing the rows'
    errors (at most MAX_LISTED_ERRORS of them, the rest counted)."""
    listed = errors[:MAX_LISTED_ERRORS]
    more = len(errors) - len(listed)
    tail = f"; the first {len(listed)} are listed" if more else ""
    return StatusFileRefused(
        f"the status file has {len(errors)} error(s) in {bad_rows} row(s){tail}; "
        "nothing was recorded",
        listed,
    )


# --- the two formats -------------------------------------------------------------------
Raw = tuple[int, dict[str, Any], str]


def _file_error(
    msg: str, error: type[Unprocessable], loc: tuple[str | int, ...] = ("body",)
) -> StatusFileRefused:
    return StatusFileRefused(msg, [error.violation(msg, *loc)])


def _too_many(count: int) -> Unprocessable:
    return _file_error(
        f"a status file may have at most {MAX_ROWS:,} rows; split the book or contact the "
        f"fund manager (more than {count - 1:,} rows sent)",
        TooManyRows,
    )


def _csv_rows(text: str) -> list[Raw]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(c.strip() for c in header):
            raise _file_error(
                f"the file has no header row; it needs the columns {', '.join(FIELDS)}",
                MissingHeader,
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
        raise _file_error(f"the CSV cannot be read: {exc}", InvalidCsv) from None
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
        raise StatusFileRefused(
            "the header row must name the columns " + ", ".join(FIELDS),
            [InvalidHeader.violation(p, "body", "header") for p in problems],
        )


def _json_rows(text: str) -> list[Raw]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise _file_error(f"the body is not valid JSON: {exc}", InvalidJson) from None
    except RecursionError:  # nested deeper than the decoder goes; a file is two levels
        raise _file_error(
            'the body is nested too deeply to be a status file {"rows": [...]}', InvalidJson
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        raise _file_error('the body must be an object {"rows": [...]}', InvalidJson)
    extra = sorted(k for k in doc if k != "rows")
    if extra:
        raise _file_error(
            f'unknown field(s) {", ".join(extra)}; the body is {{"rows": [...]}}',
            UnknownField,
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

    def fail(field: str, msg: str, error: type[Unprocessable] | str) -> None:
        loc: tuple[str | int, ...] = ("body", "rows", row_no) + ((field,) if field else ())
        code = error if isinstance(error, str) else error.code
        errors.append(Violation(loc=loc, msg=f"{msg}{where}", code=code))

    if "" in raw:  # the row itself is unusable
        fail("", str(raw[""]), InvalidRow)
        return None
    for key in raw:
        if key not in FIELDS:
            fail(str(key), "unknown field", UnknownField)
    contract = _text(raw.get("contract_no"))
    if raw.get("contract_no") is not None and not isinstance(raw.get("contract_no"), str):
        fail("contract_no", "must be a string", InvalidContractNo)
    elif contract is None:
        fail("contract_no", "required: the loan's contract number", MissingField)
    elif not contract.isprintable() or len(contract) > MAX_CONTRACT_NO:
        fail(
            "contract_no",
            f"must be 1–{MAX_CONTRACT_NO} printable characters",
            InvalidContractNo,
        )
    amounts: dict[str, int] = {}
    for field in AMOUNTS:
        value = raw.get(field)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            fail(field, 'required: a yuan amount such as "0.00"', MissingField)
            continue
        try:
            amounts[field] = parse_yuan(value)
        except MoneyFormatError as exc:
            fail(field, str(exc), InvalidAmount)
    since: date | None = None
    value = raw.get("overdue_since")
    if value is not None and not isinstance(value, str):
        fail("overdue_since", "must be a date YYYY-MM-DD, empty or null", INVALID_DATE)
    elif value is not None and value.strip():
        try:
            if not _DATE.fullmatch(value.strip()):
                raise ValueError
            since = date.fromisoformat(value.strip())
        except ValueError:
            fail("overdue_since", f"{value!r} is not a date YYYY-MM-DD", INVALID_DATE)
    status = raw.get("status")
    status = status.strip() if isinstance(status, str) else status
    if status not in STATUSES:
        fail("status", f"{status!r} is not one of {', '.join(STATUSES)}", InvalidStatus)
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

    def fail(row: FileRow, field: str, msg: str, error: type[Unprocessable]) -> None:
        errors.append(error.violation(msg, "body", "rows", row.row_no, field))
        bad.add(row.row_no)

    for row in rows:
        seen = first.setdefault(row.contract_no, row.row_no)
        if seen != row.row_no:
            fail(
                row,
                "contract_no",
                f"contract {row.contract_no} is also in row {seen}: one row per contract",
                DuplicateContract,
            )
        owing = row.principal_overdue_fen > 0 or row.interest_overdue_fen > 0
        if row.overdue_since is not None and row.overdue_since > month_end:
            fail(
                row,
                "overdue_since",
                f"{row.overdue_since} is after the month end {month_end}",
                OverdueSinceAfterMonthEnd,
            )
        if row.overdue_since is not None and not owing:
            fail(
                row,
                "overdue_since",
                "overdue_since is set but principal and interest overdue are both 0",
                OverdueSinceWithoutAmounts,
            )
        if row.overdue_since is None and owing:
            fail(
                row,
                "overdue_since",
                "principal or interest is overdue, so overdue_since (the first day in "
                "arrears) is required",
                OverdueAmountsWithoutSince,
            )
    return bad
