"""A report as an XLSX workbook (openpyxl): one sheet per section.

Row 1 holds the Chinese headers, row 2 the English ones (units named as in the CSV),
frozen above the data; the section's note follows the data after a blank row. Money is
a number of yuan with two decimals in the format `¥#,##0.00`, ratios are percent numbers
(300 bp → 0.03) in `0.00%`, dates are dates (`yyyy-mm-dd`), yes/no is 是 / 否. Every text
cell is stored as a string, never as a formula; text starting with `=`, `+`, `-`, `@`, a
tab or a carriage return also carries Excel's quote prefix, so editing the cell keeps it
text.

The bytes are deterministic: the workbook's created/modified times are the report's
cut-off (`meta.cutoff_at`, else its period end) and every zip entry carries that time,
so rendering a stored run again gives the same file."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from app.reports.document import Column, ReportDocument, Section, Value
from app.reports.render_csv import FORMULA_STARTS, NO, YES, header_en, header_zh

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
YUAN_FORMAT = "¥#,##0.00"
PERCENT_FORMAT = "0.00%"
DATE_FORMAT = "yyyy-mm-dd"
INT_FORMAT = "#,##0"
HEADER_ROWS = 2
SHEET_NAME_MAX = 31
_INVALID_SHEET_CHARS = re.compile(r"[\\*?:/\[\]]")
_HEADER_FONT = Font(bold=True)
_WRAP = Alignment(wrap_text=True, vertical="top")


def sheet_names(sections: tuple[Section, ...]) -> list[str]:
    """A valid, unique sheet name per section: its Chinese title, without the characters
    Excel refuses (\\ / * ? : [ ]), at most 31 characters, never "History"."""
    names: list[str] = []
    seen: set[str] = set()
    for i, section in enumerate(sections, 1):
        base = _INVALID_SHEET_CHARS.sub("_", section.zh).strip().strip("'") or f"Sheet{i}"
        if base.lower() == "history":
            base = f"{base}_{i}"
        name = base[:SHEET_NAME_MAX]
        n = 2
        while name.lower() in seen:
            suffix = f" ({n})"
            name = base[: SHEET_NAME_MAX - len(suffix)] + suffix
            n += 1
        seen.add(name.lower())
        names.append(name)
    return names


ZIP_EPOCH = datetime(1980, 1, 1, tzinfo=UTC)  # the earliest time a zip entry holds


def fixed_time(doc: ReportDocument) -> datetime:
    """The time the workbook says it was made: the run's cut-off (UTC, whole seconds),
    else the period's end; naive UTC, as openpyxl writes it."""
    at: datetime | None = None
    cutoff = doc.meta.get("cutoff_at")
    if isinstance(cutoff, str):
        try:
            at = datetime.fromisoformat(cutoff.replace("Z", "+00:00"))
        except ValueError:
            at = None
    if at is None or at.tzinfo is None:
        end = doc.period_end
        at = datetime(end.year, end.month, end.day, tzinfo=UTC)
    return max(at.astimezone(UTC), ZIP_EPOCH).replace(microsecond=0, tzinfo=None)


def _text(value: str) -> str:
    return ILLEGAL_CHARACTERS_RE.sub("", value)


def _width(value: Any) -> int:
    """Display width: CJK characters count twice."""
    text = value if isinstance(value, str) else str(value)
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _put_text(ws: Worksheet, row: int, col: int, text: str) -> None:
    cell = ws.cell(row=row, column=col)
    cell.value = _text(text)
    cell.data_type = "s"  # never a formula, whatever the text starts with
    if text.startswith(FORMULA_STARTS):
        cell.quotePrefix = True


def _put(ws: Worksheet, row: int, col: int, value: Value, column: Column) -> int:
    """Write one value; returns its display width."""
    if value is None:
        return 0
    if isinstance(value, bool):
        _put_text(ws, row, col, YES if value else NO)
        return 2
    if isinstance(value, int):
        cell = ws.cell(row=row, column=col)
        if column.kind == "money":
            cell.value = Decimal(value).scaleb(-2)
            cell.number_format = YUAN_FORMAT
            return _width(f"¥{abs(value) / 100:,.2f}") + 1
        if column.kind == "bp":
            cell.value = Decimal(value).scaleb(-4)
            cell.number_format = PERCENT_FORMAT
            return _width(f"{value / 100:.2f}%") + 1
        cell.value = value
        cell.number_format = INT_FORMAT
        return _width(f"{value:,}")
    if isinstance(value, date):
        cell = ws.cell(row=row, column=col)
        cell.value = value
        cell.number_format = DATE_FORMAT
        return 10
    _put_text(ws, row, col, str(value))
    return _width(str(value))


def _sheet(ws: Worksheet, section: Section) -> None:
    widths = []
    for col, column in enumerate(section.columns, 1):
        for row, head in ((1, header_zh(column)), (2, header_en(column))):
            _put_text(ws, row, col, head)
            ws.cell(row=row, column=col).font = _HEADER_FONT
        widths.append(max(_width(header_zh(column)), _width(header_en(column))))
    for r, values in enumerate(section.rows, HEADER_ROWS + 1):
        for col, column in enumerate(section.columns, 1):
            w = _put(ws, r, col, values.get(column.key), column)
            widths[col - 1] = max(widths[col - 1], w)
    if section.note:
        row = HEADER_ROWS + len(section.rows) + 2
        _put_text(ws, row, 1, f"注 / Note: {section.note}")
        ws.cell(row=row, column=1).alignment = _WRAP
    for col, width in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(col)].width = min(max(width + 2, 8), 60)
    ws.freeze_panes = ws.cell(row=HEADER_ROWS + 1, column=1).coordinate


class _FixedTimeZip(zipfile.ZipFile):
    """A zip whose every entry carries one fixed time and the same permissions."""

    def __init__(self, file: io.BytesIO, when: datetime) -> None:
        super().__init__(file, "w", zipfile.ZIP_DEFLATED)
        self._when = when.timetuple()[:6]

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self._when)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    def writestr(  # type: ignore[override]
        self, zinfo_or_arcname: str | zipfile.ZipInfo, data: str | bytes, *args: Any, **kw: Any
    ) -> None:
        name = (
            zinfo_or_arcname.filename
            if isinstance(zinfo_or_arcname, zipfile.ZipInfo)
            else zinfo_or_arcname
        )
        super().writestr(self._info(name), data)

    def write(  # type: ignore[override]
        self, filename: str, arcname: str | None = None, *args: Any, **kw: Any
    ) -> None:
        with open(filename, "rb") as f:
            self.writestr(arcname or filename, f.read())


def render_xlsx(doc: ReportDocument) -> bytes:
    when = fixed_time(doc)
    wb = Workbook()
    wb.remove(wb.active)
    for name, section in zip(sheet_names(doc.sections), doc.sections, strict=True):
        _sheet(wb.create_sheet(title=name), section)
    if not doc.sections:
        _put_text(wb.create_sheet(title="报告"), 1, 1, doc.title_zh)
    props = wb.properties
    props.title = _text(f"{doc.title_zh} / {doc.title_en}")
    props.subject = _text(f"{doc.kind} {doc.program} {doc.period} {doc.scope}".strip())
    props.creator = "risk-fund-ledger"
    props.lastModifiedBy = None
    props.created = when
    props.modified = when
    out = io.BytesIO()
    archive = _FixedTimeZip(out, when)
    ExcelWriter(wb, archive).save()
    return out.getvalue()
