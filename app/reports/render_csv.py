"""A report as one CSV file: UTF-8 with a byte-order mark (so a spreadsheet opens the
Chinese text as such), CRLF line ends, each section a block.

    苏科贷季度报告 2026-Q1 / SKD quarterly report 2026-Q1      ← the report's title
    期间 / Period,2026-Q1,2026-01-01,2026-03-31
    口径 / Scope,全部 / all
    说明 / Meta,closed,true                                    ← one line per meta entry
                                                               ← a blank line
    银行与产品 / Banks and products                             ← a section's title
    银行 / Bank,贷款本金（元） / Principal (yuan),不良率（%） / NPL ratio (%)
    JSB,1234.56,3.00
    注 / Note,…                                                ← the section's note, if any

Money is plain yuan with two decimals (`1234.56`, `-1234.56`: no separators, no
currency sign), ratios are percent numbers with two decimals (300 bp → `3.00`); the
unit is in the column's header. Dates are ISO, yes/no is 是 / 否, an empty cell is no
value. A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is
neutralised with a leading `'` so that no spreadsheet reads it as a formula; numbers
(negative money included) are never touched."""

from __future__ import annotations

import csv
import io
from datetime import date

from app.kit.money import format_fen
from app.reports.document import Column, Kind, ReportDocument, Value

# Text a spreadsheet may take for a formula (CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
UNIT_ZH = {"money": "（元）", "bp": "（%）"}
UNIT_EN = {"money": " (yuan)", "bp": " (%)"}
YES, NO = "是", "否"


def neutralise(text: str) -> str:
    """`=HYPERLINK(…)` → `'=HYPERLINK(…)`; any other text as it is."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def percent_of_bp(bp: int) -> str:
    """Basis points as a percent number with two decimals, exactly: 300 → `3.00`."""
    sign = "-" if bp < 0 else ""
    whole, frac = divmod(abs(bp), 100)
    return f"{sign}{whole}.{frac:02d}"


def header_zh(column: Column) -> str:
    return column.zh + UNIT_ZH.get(column.kind, "")


def header_en(column: Column) -> str:
    return column.en + UNIT_EN.get(column.kind, "")


def plain(value: Value, kind: Kind) -> str:
    """A cell as plain text (CSV; the HTML page adds separators): numbers exact and
    unneutralised, text neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return YES if value else NO
    if isinstance(value, int):
        if kind == "money":
            return format_fen(value)
        if kind == "bp":
            return percent_of_bp(value)
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return neutralise(str(value))


def scope_text(doc: ReportDocument) -> str:
    return doc.scope or "全部 / all"


def render_csv(doc: ReportDocument) -> bytes:
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([neutralise(f"{doc.title_zh} / {doc.title_en}")])
    w.writerow(
        ["期间 / Period", doc.period, doc.period_start.isoformat(), doc.period_end.isoformat()]
    )
    w.writerow(["口径 / Scope", neutralise(scope_text(doc))])
    for key, value in sorted(doc.meta.items()):
        shown = plain(value, "text") if not isinstance(value, bool) else str(value).lower()
        w.writerow(["说明 / Meta", neutralise(key), shown])
    for section in doc.sections:
        w.writerow([])
        w.writerow([neutralise(f"{section.zh} / {section.en}")])
        w.writerow([neutralise(f"{header_zh(c)} / {header_en(c)}") for c in section.columns])
        for row in section.rows:
            w.writerow([plain(row.get(c.key), c.kind) for c in section.columns])
        if section.note:
            w.writerow(["注 / Note", neutralise(section.note)])
    return out.getvalue().encode("utf-8-sig")
