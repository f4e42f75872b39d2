"""CSV import of enterprises (`ledger import-enterprises FILE.csv`): the file's rows go
through the same service as `POST /enterprises/batch`, with the same outcome per row.

The header names the fields of `POST /enterprises` (the JSON API's field names), in any
order; unknown columns are refused before anything is read. An empty cell leaves the
field out (its default applies to a new enterprise; a recorded one is not compared on
it). Booleans are `true`/`false` (or `1`/`0`), dates `YYYY-MM-DD`, amounts yuan strings
(`"20000000.00"`). The actual controller takes two columns, `controller.name` and
`controller.id_number` (the `controller` object of the JSON API). Row numbers count the
header as row 1, as a spreadsheet shows them."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session

from app.models import Bank
from app.reference import schemas as s
from app.reference.enterprise_batch import register_batch

# the controller object's fields as columns of their own
CONTROLLER_COLUMNS = tuple(f"controller.{name}" for name in s.ControllerIn.model_fields)
FIELDS: tuple[str, ...] = (
    "credit_code",
    *(name for name in s.EnterpriseFacts.model_fields if name != "controller"),
    *CONTROLLER_COLUMNS,
)
REQUIRED: tuple[str, ...] = tuple(
    name for name, f in s.EnterpriseCreate.model_fields.items() if f.is_required()
)
REPORT_HEADER = ("row", "credit_code", "field", "code", "message")

# Exit codes: every row accepted; some rows refused (the accepted ones are committed);
# the file or the arguments cannot be used (nothing written).
OK, ROWS_REFUSED, UNUSABLE = 0, 1, 2


class UnusableFile(Exception):
    """The file cannot be imported at all (header, encoding, size, arguments)."""


@dataclass(frozen=True)
class ReportLine:
    row: int
    credit_code: str
    field: str
    code: str
    message: str


def read_rows(path: Path, *, encoding: str = "utf-8-sig") -> list[tuple[int, dict[str, Any]]]:
    """(row number, item) for every data row; blank lines are skipped."""
    try:
        with path.open(encoding=encoding, newline="") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            _check_header(header)
            rows = []
            for number, cells in enumerate(reader, start=2):
                if not any(c.strip() for c in cells):
                    continue
                rows.append((number, _item(header, cells)))
    except UnicodeDecodeError as exc:
        name = "UTF-8" if encoding.lower().replace("_", "-") in ("utf-8-sig", "utf-8") else encoding
        raise UnusableFile(
            f"{path} is not {name} text ({exc.reason} at byte {exc.start}); save it as "
            "UTF-8 or name its encoding with --encoding (e.g. gb18030)"
        ) from None
    except LookupError:
        raise UnusableFile(f"unknown encoding {encoding!r}") from None
    except (OSError, csv.Error) as exc:
        raise UnusableFile(f"{path}: {exc}") from None
    if not rows:
        raise UnusableFile(f"{path} has no data rows")
    if len(rows) > s.ENTERPRISE_BATCH_MAX:
        raise UnusableFile(
            f"{path} has {len(rows)} rows; at most {s.ENTERPRISE_BATCH_MAX:,} are imported at "
            "once (as POST /enterprises/batch): split the file"
        )
    return rows


def _check_header(header: list[str]) -> None:
    if not any(header):
        raise UnusableFile("the file is empty: the first line must name the columns")
    problems = []
    unknown = [h for h in header if h not in FIELDS]
    if unknown:
        problems.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
    doubled = sorted({h for h in header if header.count(h) > 1})
    if doubled:
        problems.append(f"column(s) given twice: {', '.join(doubled)}")
    missing = [f for f in REQUIRED if f not in header]
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    if problems:
        raise UnusableFile(
            "; ".join(problems)
            + ". The columns are the fields of POST /enterprises: "
            + ", ".join(FIELDS)
        )


def _item(header: list[str], cells: list[str]) -> dict[str, Any]:
    item: dict[str, Any] = {
        name: cell.strip() for name, cell in zip(header, cells, strict=False) if cell.strip()
    }
    if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
        # refused by the batch like any unknown field, and reported on the row
        item["(extra cells)"] = ",".join(cells[len(header) :])
    controller = {
        column.removeprefix("controller."): item.pop(column)
        for column in CONTROLLER_COLUMNS
        if column in item
    }
    if controller:  # one of the two cells alone is refused as a missing field
        item["controller"] = controller
    return item


def import_rows(
    session: Session,
    rows: list[tuple[int, dict[str, Any]]],
    *,
    bank: str | None,
    person_key: str,
) -> tuple[s.EnterpriseBatchOut, list[ReportLine]]:
    """Run the batch service on the rows; its answer and one report line per error."""
    if bank is not None and session.get(Bank, bank) is None:
        raise UnusableFile(f"unknown bank {bank!r} (--bank takes a partner bank's code)")
    results = register_batch(
        session,
        items=[item for _, item in rows],
        by_bank=bank,
        actor_id=None,
        person_key=person_key,
    )
    first_row: dict[str, int] = {}
    for r in results:
        if r.credit_code is not None:
            first_row.setdefault(r.credit_code, rows[r.index][0])
    lines = [
        ReportLine(
            row=rows[r.index][0],
            credit_code=r.credit_code or "",
            field=".".join(str(p) for p in e.loc[2:]),
            code=e.code or r.code or "",
            message=f"credit code already given in row {first_row[r.credit_code]}"
            if e.code == "duplicate_in_batch" and r.credit_code is not None
            else e.msg,
        )
        for r in results
        for e in r.errors
    ]
    return s.EnterpriseBatchOut.of(results), lines


def write_report(path: Path, lines: list[ReportLine]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(REPORT_HEADER)
        for line in lines:
            writer.writerow([line.row, line.credit_code, line.field, line.code, line.message])


def _describe(lines: list[ReportLine]) -> Iterator[str]:
    for line in lines:
        where = f" {line.field}" if line.field else ""
        yield f"row {line.row} {line.credit_code or '-'}{where}: {line.message} [{line.code}]"


def import_file(
    session: Session,
    path: Path,
    *,
    bank: str | None,
    report: Path | None,
    person_key: str,
    encoding: str = "utf-8-sig",
    out: IO[str],
    err: IO[str],
) -> int:
    """Import the file in the caller's transaction; print the summary; the exit code.
    Accepted rows stay in the transaction even when other rows are refused (as in
    POST /enterprises/batch); the caller commits."""
    try:
        rows = read_rows(path, encoding=encoding)
        answer, lines = import_rows(session, rows, bank=bank, person_key=person_key)
    except UnusableFile as exc:
        print(f"not imported: {exc}", file=err)
        return UNUSABLE
    if report is not None:
        write_report(report, lines)
    else:
        for text in _describe(lines):
            print(text, file=err)
    print(
        f"{path}: {len(rows)} rows; created {answer.created}, unchanged {answer.unchanged}, "
        f"refused {answer.refused}"
        + (f" ({len(lines)} errors written to {report})" if report is not None else ""),
        file=out,
    )
    return ROWS_REFUSED if answer.refused else OK
