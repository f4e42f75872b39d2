"""The one shape every report takes, whatever computes it and however it is rendered.

A `ReportDocument` is a titled list of `Section`s; a section is a table: typed columns
with Chinese and English headers, and rows of plain values (money as integer fen, ratios
as integer basis points, dates, counts, text). `Chart`s name a section and its columns.
Renderers (JSON, CSV, XLSX, HTML with SVG charts) read only this shape, so a figure looks
the same in every format, and the canonical JSON of a document is what a stored run keeps
and hashes (SHA-256)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from app.kit.money import format_fen

Kind = Literal["text", "int", "money", "bp", "date", "bool"]
Value = str | int | bool | date | None


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    kind: Kind = "text"


@dataclass(frozen=True)
class Section:
    key: str
    zh: str
    en: str
    columns: tuple[Column, ...]
    rows: tuple[dict[str, Value], ...] = ()
    note: str = ""  # how the figures are read, with their rule IDs


@dataclass(frozen=True)
class Chart:
    """A chart of a section: bars (or a line) of `series` columns per `x` row, with an
    optional threshold line (e.g. the 3 % NPL line, in basis points)."""

    key: str
    zh: str
    en: str
    section: str
    x: str
    series: tuple[str, ...]
    kind: Literal["bar", "line"] = "bar"
    threshold_bp: int | None = None


@dataclass(frozen=True)
class ReportDocument:
    kind: Literal["quarterly", "monthly", "annual"]
    program: str
    period: str  # 2026-Q3, 2026-11, 2026
    period_start: date
    period_end: date
    title_zh: str
    title_en: str
    sections: tuple[Section, ...]
    charts: tuple[Chart, ...] = ()
    scope: str = ""  # "" for the whole programme, else e.g. a bank code
    meta: dict[str, Value] = field(default_factory=dict)  # run id, version, cut-off, …

    def section(self, key: str) -> Section:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(key)


def render_value(value: Value, kind: Kind) -> Value:
    """A value as the JSON rendering shows it: money as a yuan string, dates ISO."""
    if value is None:
        return None
    if kind == "money":
        assert isinstance(value, int) and not isinstance(value, bool)
        return format_fen(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def to_json_obj(doc: ReportDocument) -> dict[str, Any]:
    """The document as JSON-ready data (what `format=json` returns)."""
    return {
        "kind": doc.kind,
        "program": doc.program,
        "period": doc.period,
        "period_start": doc.period_start.isoformat(),
        "period_end": doc.period_end.isoformat(),
        "scope": doc.scope,
        "title_zh": doc.title_zh,
        "title_en": doc.title_en,
        "meta": {k: render_value(v, "text") for k, v in sorted(doc.meta.items())},
        "sections": [
            {
                "key": s.key,
                "zh": s.zh,
                "en": s.en,
                "note": s.note,
                "columns": [
                    {"key": c.key, "zh": c.zh, "en": c.en, "kind": c.kind} for c in s.columns
                ],
                "rows": [
                    {c.key: render_value(r.get(c.key), c.kind) for c in s.columns} for r in s.rows
                ],
            }
            for s in doc.sections
        ],
        "charts": [
            {
                "key": c.key,
                "zh": c.zh,
                "en": c.en,
                "section": c.section,
                "x": c.x,
                "series": list(c.series),
                "kind": c.kind,
                "threshold_bp": c.threshold_bp,
            }
            for c in doc.charts
        ],
    }


def canonical_json(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def from_json_obj(obj: dict[str, Any]) -> ReportDocument:
    """A document back from its JSON rendering (a stored run), values typed again."""

    def typed(v: Any, kind: str) -> Value:
        if v is None:
            return None
        if kind == "money":
            whole, _, frac = str(v).lstrip("-").partition(".")
            fen = int(whole) * 100 + int((frac + "00")[:2])
            return -fen if str(v).startswith("-") else fen
        if kind == "date":
            return date.fromisoformat(v)
        return v

    sections = tuple(
        Section(
            key=s["key"],
            zh=s["zh"],
            en=s["en"],
            note=s.get("note", ""),
            columns=tuple(Column(c["key"], c["zh"], c["en"], c["kind"]) for c in s["columns"]),
            rows=tuple(
                {c["key"]: typed(r.get(c["key"]), c["kind"]) for c in s["columns"]}
                for r in s["rows"]
            ),
        )
        for s in obj["sections"]
    )
    charts = tuple(
        Chart(
            key=c["key"],
            zh=c["zh"],
            en=c["en"],
            section=c["section"],
            x=c["x"],
            series=tuple(c["series"]),
            kind=c["kind"],
            threshold_bp=c.get("threshold_bp"),
        )
        for c in obj.get("charts", [])
    )
    return ReportDocument(
        kind=obj["kind"],
        program=obj["program"],
        period=obj["period"],
        period_start=date.fromisoformat(obj["period_start"]),
        period_end=date.fromisoformat(obj["period_end"]),
        scope=obj.get("scope", ""),
        title_zh=obj["title_zh"],
        title_en=obj["title_en"],
        sections=sections,
        charts=charts,
        meta=dict(obj.get("meta", {})),
    )


def utc_text(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
