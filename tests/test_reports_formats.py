"""The renderings of a report document (issue part 5): CSV in UTF-8 with BOM, XLSX
(openpyxl) and the HTML page with server-side SVG charts. Every format neutralises text
a spreadsheet would take for a formula and never touches numbers; the XLSX bytes of one
document are the same at any time.

Hand-built documents, no database."""

from __future__ import annotations

import csv
import io
import re
import time
import zipfile
from datetime import date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from app.reports.document import (
    Chart,
    Column,
    ReportDocument,
    Section,
    canonical_json,
    from_json_obj,
    to_json_obj,
)
from app.reports.render_csv import neutralise, render_csv
from app.reports.render_html import render_html
from app.reports.render_xlsx import render_xlsx, sheet_names

FORMULA_NAME = '=HYPERLINK("http://x")'
COLUMNS = (
    Column("bank", "银行", "Bank"),
    Column("enterprise", "企业", "Enterprise"),
    Column("loans", "笔数", "Loans", "int"),
    Column("principal", "本金", "Principal", "money"),
    Column("npl_ratio", "不良率", "NPL ratio", "bp"),
    Column("filed_on", "备案日", "Filed on", "date"),
    Column("warning", "预警", "Warning", "bool"),
)
ROWS = (
    {
        "bank": "JSB",
        "enterprise": FORMULA_NAME,
        "loans": 3,
        "principal": -123_456,  # a negative amount: -1234.56 yuan
        "npl_ratio": 350,
        "filed_on": date(2026, 2, 1),
        "warning": True,
    },
    {
        "bank": "ICBC_JS",
        "enterprise": "+86 南京科技有限公司",
        "loans": 0,
        "principal": 100_000_000,
        "npl_ratio": -25,
        "filed_on": None,
        "warning": False,
    },
    {"bank": "CCB_JS", "enterprise": "@SUM(A1)", "loans": -2, "principal": 0},
    {"bank": "BOC_JS", "enterprise": "-连云港企业", "principal": 5},
    {"bank": "LYG_RCB", "enterprise": "\tcmd|' /C calc'!A0"},
    {"bank": "<b>银行</b>", "enterprise": "<script>alert(1)</script>"},
)


def document(**overrides: object) -> ReportDocument:
    base: dict[str, object] = {
        "kind": "quarterly",
        "program": "SKD",
        "period": "2026-Q1",
        "period_start": date(2026, 1, 1),
        "period_end": date(2026, 3, 31),
        "title_zh": "苏科贷季度报告 2026年第一季度",
        "title_en": "SKD quarterly report 2026-Q1",
        "sections": (
            Section("banks", "银行与产品", "Banks and products", COLUMNS, ROWS, note="SKD-Q3"),
            Section(
                "long",
                "各合作银行按产品分列的贷款备案、代偿与追偿情况汇总表（季度）",
                "A section whose Chinese title is longer than a sheet name may be",
                (Column("bank", "银行", "Bank"), Column("amount", "金额", "Amount", "money")),
                ({"bank": "JSB", "amount": 1},),
            ),
            Section("bad", "比率/上限[3%]?", "Bad characters", (Column("x", "甲", "X"),)),
            Section("bad2", "比率/上限[3%]?", "The same name again", (Column("x", "甲", "X"),)),
        ),
        "charts": (
            Chart(
                "npl",
                "各银行不良率",
                "NPL ratio per bank",
                "banks",
                "bank",
                ("npl_ratio",),
                "bar",
                300,
            ),
            Chart(
                "principal", "本金", "Principal", "banks", "bank", ("principal", "loans"), "line"
            ),
        ),
        "meta": {"closed": True, "version": 1, "cutoff_at": "2026-04-02T01:02:03.456789Z"},
    }
    base.update(overrides)
    return ReportDocument(**base)  # type: ignore[arg-type]


# --- CSV -----------------------------------------------------------------------------
def csv_lines(doc: ReportDocument) -> list[list[str]]:
    data = render_csv(doc)
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))


def test_csv_is_utf8_with_bom_one_block_per_section_and_plain_numbers() -> None:
    """UTF-8 with BOM and CRLF; each section: its title, a "中文 / English" header line
    with units, rows; money plain yuan, ratios percent numbers, dates ISO, 是/否."""
    data = render_csv(document())
    assert b"\r\n" in data and data.count(b"\n") == data.count(b"\r\n")
    lines = csv_lines(document())
    assert lines[0] == ["苏科贷季度报告 2026年第一季度 / SKD quarterly report 2026-Q1"]
    assert ["期间 / Period", "2026-Q1", "2026-01-01", "2026-03-31"] in lines
    title = lines.index(["银行与产品 / Banks and products"])
    assert lines[title - 1] == []
    assert lines[title + 1] == [
        "银行 / Bank",
        "企业 / Enterprise",
        "笔数 / Loans",
        "本金（元） / Principal (yuan)",
        "不良率（%） / NPL ratio (%)",
        "备案日 / Filed on",
        "预警 / Warning",
    ]
    assert lines[title + 2] == [
        "JSB",
        "'" + FORMULA_NAME,
        "3",
        "-1234.56",
        "3.50",
        "2026-02-01",
        "是",
    ]
    assert lines[title + 3] == [
        "ICBC_JS",
        "'+86 南京科技有限公司",
        "0",
        "1000000.00",
        "-0.25",
        "",
        "否",
    ]
    assert lines[title + 2 + len(ROWS)] == ["注 / Note", "SKD-Q3"]


def test_csv_neutralises_formula_text_but_never_numbers() -> None:
    """Text starting with = + - @, a tab or CR gets a leading quote; negative money,
    negative counts and negative ratios are numbers and stay as they are."""
    lines = csv_lines(document())
    cells = {c for line in lines for c in line}
    for text in (
        FORMULA_NAME,
        "+86 南京科技有限公司",
        "@SUM(A1)",
        "-连云港企业",
        "\tcmd|' /C calc'!A0",
    ):
        assert "'" + text in cells and text not in cells
    assert {"-1234.56", "-2", "-0.25"} <= cells
    assert neutralise("\rx") == "'\rx"
    assert neutralise("南京=1") == "南京=1"
    assert neutralise("") == ""


# --- XLSX ----------------------------------------------------------------------------
def test_xlsx_sheets_headers_number_formats_and_frozen_header() -> None:
    """One sheet per section with a valid name (≤ 31 characters, no \\ / * ? : [ ],
    unique); Chinese then English header row, frozen; money in yuan as numbers with
    the yuan format, ratios as percent numbers, dates as dates."""
    doc = document()
    wb = load_workbook(io.BytesIO(render_xlsx(doc)))
    assert wb.sheetnames == sheet_names(doc.sections)
    assert len(wb.sheetnames) == len(doc.sections)
    assert len({n.lower() for n in wb.sheetnames}) == len(wb.sheetnames)
    for name in wb.sheetnames:
        assert 0 < len(name) <= 31 and not re.search(r"[\\/*?:\[\]]", name)
    assert wb.sheetnames[0] == "银行与产品"
    assert wb.sheetnames[1] == "各合作银行按产品分列的贷款备案、代偿与追偿情况汇总表（季度）"[:31]
    ws = wb["银行与产品"]
    assert ws.freeze_panes == "A3"
    assert [c.value for c in ws[1]] == [
        "银行",
        "企业",
        "笔数",
        "本金（元）",
        "不良率（%）",
        "备案日",
        "预警",
    ]
    assert ws["D2"].value == "Principal (yuan)"
    money, ratio, day = ws["D3"], ws["E3"], ws["F3"]
    assert money.data_type == "n" and Decimal(str(money.value)) == Decimal("-1234.56")
    assert money.number_format == "¥#,##0.00"
    assert ws["D4"].value == 1_000_000 and ws["D4"].number_format == "¥#,##0.00"
    assert ratio.value == pytest.approx(0.035) and ratio.number_format == "0.00%"
    assert isinstance(day.value, datetime) and day.value.date() == date(2026, 2, 1)
    assert day.number_format == "yyyy-mm-dd"
    assert ws["G3"].value == "是" and ws["C5"].value == -2
    assert ws.column_dimensions["B"].width > ws.column_dimensions["C"].width


def test_xlsx_never_writes_a_formula() -> None:
    """A formula-looking enterprise name is a string cell with the quote prefix, as
    written; the sheet XML holds no formula element."""
    data = render_xlsx(document())
    ws = load_workbook(io.BytesIO(data))["银行与产品"]
    for cell, text in (("B3", FORMULA_NAME), ("B4", "+86 南京科技有限公司"), ("B5", "@SUM(A1)")):
        assert ws[cell].value == text and ws[cell].data_type == "s"
        assert ws[cell].quotePrefix
    assert not ws["A3"].quotePrefix
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/")]
        assert sheets and not any(b"<f>" in z.read(n) or b"<f " in z.read(n) for n in sheets)


def test_xlsx_bytes_are_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rendering the same document a year later gives the same bytes: the workbook's
    created/modified times are the cut-off, and so is every zip entry's time."""
    doc = document()
    first = render_xlsx(doc)
    later = time.time() + 366 * 86400
    monkeypatch.setattr(time, "time", lambda: later)
    assert render_xlsx(doc) == first
    with zipfile.ZipFile(io.BytesIO(first)) as z:
        assert {i.date_time for i in z.infolist()} == {(2026, 4, 2, 1, 2, 2)}
        core = z.read("docProps/core.xml").decode()
    assert core.count("2026-04-02T01:02:03Z") == 2
    # a stored run re-read from its canonical JSON renders the same bytes
    again = from_json_obj(__import__("json").loads(canonical_json(to_json_obj(doc))))
    assert render_xlsx(again) == first


# --- HTML ----------------------------------------------------------------------------
def test_html_page_is_self_contained_with_escaped_svg_charts() -> None:
    """`<html lang="zh-CN">`, a CJK font stack, no script or external asset; one inline
    SVG per chart with bars, values as text, axis labels and the 3 % threshold line
    with its label; every text escaped."""
    page = render_html(document(), content_sha256="ab" * 32).decode("utf-8")
    assert page.startswith('<!DOCTYPE html>\n<html lang="zh-CN">')
    assert '"Noto Sans CJK SC"' in page
    assert "<title>苏科贷季度报告 2026年第一季度 · SKD quarterly report 2026-Q1</title>" in page
    assert not re.search(r"<script|<link|<img|src=|url\(", page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;银行&lt;/b&gt;" in page
    svgs = re.findall(r"<svg .*?</svg>", page, re.S)
    assert len(svgs) == 2
    npl = next(s for s in svgs if 'data-chart="npl"' in s)
    assert npl.count('class="bar"') == 2  # the rows with a ratio
    assert 'class="threshold" data-threshold-bp="300"' in npl
    assert "3.00% 阈值 / threshold" in npl
    assert ">3.50%</text>" in npl and ">-0.25%</text>" in npl
    assert "银行 / Bank" in npl and "不良率（%） / NPL ratio (%)" in npl
    line = next(s for s in svgs if 'data-chart="principal"' in s)
    assert "<polyline" in line and "threshold" not in line
    assert ">-1,234.56</text>" in line
    assert '<td class="num">-1,234.56</td>' in page and "ab" * 32 in page
