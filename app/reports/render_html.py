"""A report as one self-contained HTML page: no script, no external asset; tables per
section and the document's charts drawn on the server as inline SVG (bars or a line per
`x` row, the threshold line with its label, axes with their labels, every value as
text). Every piece of text from the document is escaped."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from html import escape

from app.kit.money import format_fen
from app.reports.document import Chart, Column, Kind, ReportDocument, Section, Value
from app.reports.render_csv import NO, YES, percent_of_bp

MEDIA_TYPE = "text/html; charset=utf-8"
FONT_STACK = (
    '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC", '
    '"Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif'
)
COLOURS = ("#2f6fb3", "#e08a1e", "#3a9a5b", "#8e5bb5", "#c0504d", "#4bacc6")
THRESHOLD_COLOUR = "#d62728"

CSS = f"""
body {{ font-family: {FONT_STACK}; margin: 24px; color: #1f2328; background: #fff; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }}
h2 {{ font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de; }}
.en {{ color: #57606a; font-weight: normal; }}
dl.meta {{ display: grid; grid-template-columns: max-content auto; gap: 2px 12px;
  font-size: 13px; color: #57606a; }}
dl.meta dt {{ font-weight: bold; }}
table {{ border-collapse: collapse; font-size: 13px; margin-bottom: 6px; }}
div.table {{ overflow-x: auto; max-width: 100%; }}
th, td {{ border: 1px solid #d0d7de; padding: 4px 8px; }}
th {{ background: #f6f8fa; text-align: left; vertical-align: bottom; min-width: 5em;
  max-width: 12em; }}
td {{ white-space: nowrap; }}
td.text {{ white-space: normal; min-width: 6em; max-width: 28em; }}
th .en {{ display: block; font-size: 11px; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
td.empty {{ color: #8c959f; text-align: center; }}
p.note {{ font-size: 12px; color: #57606a; max-width: 960px; }}
figure {{ margin: 16px 0 24px; }}
figcaption {{ font-weight: bold; margin-bottom: 6px; }}
svg.chart {{ font-family: {FONT_STACK}; background: #fff; }}
svg.chart text {{ font-size: 11px; fill: #1f2328; }}
svg.chart .axis {{ stroke: #57606a; stroke-width: 1; }}
svg.chart .grid {{ stroke: #eaeef2; stroke-width: 1; }}
svg.chart .threshold {{ stroke: {THRESHOLD_COLOUR}; stroke-width: 2; stroke-dasharray: 6 4; }}
svg.chart text.threshold-label {{ fill: {THRESHOLD_COLOUR}; font-weight: bold; }}
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def shown(value: Value, kind: Kind) -> str:
    """A value as the page shows it: yuan with separators, percent, 是 / 否, ISO dates."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return YES if value else NO
    if isinstance(value, int):
        if kind == "money":
            sign, text = ("-", format_fen(-value)) if value < 0 else ("", format_fen(value))
            whole, _, frac = text.partition(".")
            return f"{sign}{int(whole):,}.{frac}"
        if kind == "bp":
            return percent_of_bp(value) + "%"
        return f"{value:,}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _unit(kind: Kind) -> tuple[str, str]:
    return {"money": ("（元）", " (yuan)"), "bp": ("（%）", " (%)")}.get(kind, ("", ""))


def _table(section: Section) -> str:
    head = "".join(
        f'<th scope="col">{_e(c.zh + _unit(c.kind)[0])}'
        f'<span class="en">{_e(c.en + _unit(c.kind)[1])}</span></th>'
        for c in section.columns
    )
    body = []
    for row in section.rows:
        cells = []
        for c in section.columns:
            value = row.get(c.key)
            numeric = c.kind in ("int", "money", "bp")
            cls = "empty" if value is None else "num" if numeric else c.kind
            attr = f' class="{cls}"'
            cells.append(f"<td{attr}>{_e(shown(value, c.kind))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not section.rows:
        body.append(
            f'<tr><td class="empty" colspan="{len(section.columns) or 1}">无 / none</td></tr>'
        )
    return (
        f'<div class="table"><table data-section="{_e(section.key)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


@dataclass(frozen=True)
class _Scale:
    low: float
    high: float
    top: float
    bottom: float

    def y(self, v: float) -> float:
        span = self.high - self.low or 1.0
        return self.bottom - (v - self.low) / span * (self.bottom - self.top)


def _number(value: Value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return float(value)


def _axis_text(v: float, kind: Kind) -> str:
    if kind == "bp":
        return f"{v / 100:.2f}%"
    if kind == "money":
        yuan = v / 100
        return f"{yuan / 10_000:,.0f}万" if abs(yuan) >= 100_000 else f"{yuan:,.0f}"
    return f"{v:,.0f}"


def _ticks(low: float, high: float) -> tuple[float, float, float]:
    """A round axis: (low, high, step) with about four steps of 1, 2 or 5 × 10ⁿ."""
    span = (high - low) * 1.1 or 1.0
    raw = span / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = max(next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), 1.0)
    return math.floor(low / step) * step, math.ceil(high * 1.1 / step) * step or step, step


def _y_label(series: list[Column], kind: Kind) -> str:
    if len(series) == 1:
        zh, en = _unit(kind)
        return f"{series[0].zh}{zh} / {series[0].en}{en}"
    return {
        "bp": "比率（%） / ratio (%)",
        "money": "金额（元） / amount (yuan)",
    }.get(kind, "数量 / count")


def _text_width(text: str) -> float:
    """Approximate width in pixels at 11 px: CJK characters are square."""
    return sum(11.0 if ord(ch) > 0x2E80 else 6.5 for ch in text)


def svg_chart(chart: Chart, section: Section) -> str:
    """The chart as an inline SVG: one group per `x` row, a bar (or a line point) per
    series column with its value as text, the threshold line when the chart has one."""
    columns = {c.key: c for c in section.columns}
    series: list[Column] = [columns[k] for k in chart.series if k in columns]
    x_col = columns.get(chart.x)
    kind: Kind = series[0].kind if series else "int"
    rows = section.rows
    values = [[_number(r.get(s.key)) for s in series] for r in rows]
    numbers = [v for vs in values for v in vs if v is not None]
    if chart.threshold_bp is not None:
        numbers.append(float(chart.threshold_bp))
    low, high, step = _ticks(min([0.0, *numbers]), max([0.0, *numbers]))
    group = max(72, 30 * len(series) + 24)
    left, top = 84, 36
    right = 150 if chart.threshold_bp is not None else 24
    legend_h = 20 * len(series)
    plot_h = 220
    width = max(360, left + right + group * max(len(rows), 1))
    bottom = top + plot_h
    labels = [shown(r.get(chart.x), x_col.kind if x_col else "text") for r in rows]
    widest = max([_text_width(t) for t in labels] or [0.0])
    rotate = widest > group - 4
    label_room = int(widest * 0.6) + 24 if rotate else 24
    height = bottom + label_room + 46 + legend_h
    scale = _Scale(low, high, top, bottom)
    title = f"{chart.zh} / {chart.en}"
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'data-chart="{_e(chart.key)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
    ]
    ticks = round((high - low) / step)
    for i in range(ticks + 1):
        tick = low + step * i
        y = scale.y(tick)
        parts.append(
            f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_e(_axis_text(tick, kind))}</text>"
        )
    zero = scale.y(0.0)
    parts.append(
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}"/>'
        f'<line class="axis" x1="{left}" y1="{zero:.1f}" x2="{width - right}" y2="{zero:.1f}"/>'
    )
    y_label = _y_label(series, kind)
    parts.append(
        f'<text class="axis-label" x="14" y="{(top + bottom) / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {(top + bottom) / 2:.1f})">{_e(y_label)}</text>'
    )
    x_label = f"{x_col.zh} / {x_col.en}" if x_col else chart.x
    parts.append(
        f'<text class="axis-label" x="{(left + width - right) / 2:.1f}" '
        f'y="{bottom + label_room + 16}" '
        f'text-anchor="middle">{_e(x_label)}</text>'
    )
    bar_w = (group - 20) / max(len(series), 1)
    points: list[list[tuple[float, float]]] = [[] for _ in series]
    for i, (label, vs) in enumerate(zip(labels, values, strict=True)):
        gx = left + group * i + 10
        lx, ly = gx + (group - 20) / 2, bottom + 16
        turn = f' transform="rotate(-35 {lx:.1f} {ly})"' if rotate else ""
        parts.append(
            f'<text class="x-label" x="{lx:.1f}" y="{ly}" '
            f'text-anchor="{"end" if rotate else "middle"}"{turn}>{_e(label)}</text>'
        )
        for j, (s, v) in enumerate(zip(series, vs, strict=True)):
            if v is None:
                continue
            colour = COLOURS[j % len(COLOURS)]
            value_text = shown(int(v), s.kind)
            if chart.kind == "line":
                cx, cy = gx + (group - 20) / 2, scale.y(v)
                points[j].append((cx, cy))
                parts.append(
                    f'<circle class="point" data-series="{_e(s.key)}" cx="{cx:.1f}" '
                    f'cy="{cy:.1f}" r="3" fill="{colour}"/>'
                    f'<text class="value" x="{cx:.1f}" y="{cy - 7:.1f}" '
                    f'text-anchor="middle">{_e(value_text)}</text>'
                )
                continue
            x = gx + bar_w * j
            y_top, y_bottom = sorted((scale.y(v), zero))
            parts.append(
                f'<rect class="bar" data-series="{_e(s.key)}" x="{x:.1f}" y="{y_top:.1f}" '
                f'width="{max(bar_w - 2, 1):.1f}" height="{max(y_bottom - y_top, 0.5):.1f}" '
                f'fill="{colour}"><title>{_e(label)}: {_e(value_text)}</title></rect>'
                f'<text class="value" x="{x + bar_w / 2:.1f}" y="{y_top - 4:.1f}" '
                f'text-anchor="middle">{_e(value_text)}</text>'
            )
    for j, pts in enumerate(points):
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            parts.append(
                f'<polyline class="line" points="{path}" fill="none" '
                f'stroke="{COLOURS[j % len(COLOURS)]}" stroke-width="2"/>'
            )
    if chart.threshold_bp is not None:
        y = scale.y(float(chart.threshold_bp))
        text = f"{percent_of_bp(chart.threshold_bp)}% 阈值 / threshold"
        parts.append(
            f'<line class="threshold" data-threshold-bp="{chart.threshold_bp}" x1="{left}" '
            f'y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}"/>'
            f'<text class="threshold-label" x="{width - right + 6}" y="{y + 4:.1f}" '
            f'text-anchor="start">{_e(text)}</text>'
        )
    for j, s in enumerate(series):
        ly = bottom + label_room + 40 + 20 * j
        parts.append(
            f'<rect x="{left}" y="{ly - 10}" width="12" height="12" '
            f'fill="{COLOURS[j % len(COLOURS)]}"/>'
            f'<text class="legend" x="{left + 18}" y="{ly}">{_e(s.zh)} / {_e(s.en)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _meta(doc: ReportDocument, content_sha256: str | None) -> str:
    items = [
        ("期间 Period", f"{doc.period} ({doc.period_start} – {doc.period_end})"),
        ("范围 Scope", doc.scope or "全部 / all"),
    ]
    items += [(k, shown(v, "text")) for k, v in sorted(doc.meta.items())]
    if content_sha256:
        items.append(("SHA-256", content_sha256))
    return (
        '<dl class="meta">'
        + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items)
        + "</dl>"
    )


def render_html(doc: ReportDocument, *, content_sha256: str | None = None) -> bytes:
    """The page; `content_sha256` (of the canonical JSON) is shown when given."""
    sections = {s.key: s for s in doc.sections}
    charts = [
        f'<figure data-chart="{_e(c.key)}"><figcaption>{_e(c.zh)} '
        f'<span class="en">{_e(c.en)}</span></figcaption>{svg_chart(c, sections[c.section])}'
        "</figure>"
        for c in doc.charts
        if c.section in sections
    ]
    body = [
        f'<h1>{_e(doc.title_zh)} <span class="en">{_e(doc.title_en)}</span></h1>',
        _meta(doc, content_sha256),
    ]
    if charts:
        body.append('<h2>图表 <span class="en">Charts</span></h2>')
        body += charts
    for s in doc.sections:
        body.append(
            f'<section id="{_e(s.key)}"><h2>{_e(s.zh)} <span class="en">{_e(s.en)}</span></h2>'
            + _table(s)
            + (f'<p class="note">{_e(s.note)}</p>' if s.note else "")
            + "</section>"
        )
    page = (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(doc.title_zh)} · {_e(doc.title_en)}</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
    return page.encode("utf-8")
