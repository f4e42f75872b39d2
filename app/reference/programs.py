"""The `programs` rows every `program` column references (migration 0017), kept in step
with the programme registry."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ProgramRecord
from app.programs.base import registered_programs


def ensure_program_rows(session: Session) -> int:
    """Insert a `programs` row for every registered programme that has none (SKD and XB
    come with the migration; a programme registered later, e.g. a plug-in, gets its row
    here, before anything of it is stored). Rows present are left alone. The number of
    rows added."""
    present = set(session.scalars(select(ProgramRecord.code)))
    added = [
        ProgramRecord(code=p.code, name_zh=p.name_zh, name_en=p.name_en)
        for p in registered_programs()
        if p.code not in present
    ]
    if added:
        session.add_all(added)
        session.flush()
    return len(added)
