"""Pure helpers: money (M-1), allocation (M-2), working-day calendar (M-3), clock (M-5)."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.calendar.library import library_years, provisional_year
from app.errors import Conflict
from app.kit.allocation import allocate
from app.kit.calendar import CalendarUnavailable, Deadline, WorkingCalendar
from app.kit.clock import Clock
from app.kit.money import MAX_FEN, MoneyFormatError, format_fen, parse_yuan
from app.kit.statemachine import Transition, TransitionTable


# --- M-1 money -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("0", 0),
        ("0.01", 1),
        ("1", 100),
        ("1.5", 150),
        ("5000000.00", 500_000_000),
        ("1000000.01", 100_000_001),
    ],
)
def test_m1_parse_yuan(text: str, fen: int) -> None:
    assert parse_yuan(text) == fen


@pytest.mark.parametrize(
    "bad",
    [
        "-1",
        "1.001",
        "1e6",
        "NaN",
        "inf",
        "1,000",
        " 1",
        "1.",
        ".5",
        "01",
        "",
        "+1",
        "１",
        1,
        1.5,
        None,
        "99999999999999999",
    ],
)
def test_m1_parse_yuan_refuses(bad: object) -> None:
    with pytest.raises(MoneyFormatError):
        parse_yuan(bad)  # type: ignore[arg-type]


def test_m1_format_fen() -> None:
    assert format_fen(0) == "0.00"
    assert format_fen(1) == "0.01"
    assert format_fen(120_000_050) == "1200000.50"
    assert format_fen(-150) == "-1.50"
    with pytest.raises(TypeError):
        format_fen(1.5)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=MAX_FEN))
def test_m1_round_trip(fen: int) -> None:
    assert parse_yuan(format_fen(fen)) == fen


# --- M-2 allocation ------------------------------------------------------------------
def test_m2_spec_example_skd1_remainder_to_bank() -> None:
    parts = allocate(100_000_001, [("province", 4000), ("city", 4000), ("bank", 2000)])
    assert parts == {"province": 40_000_000, "city": 40_000_000, "bank": 20_000_001}


def test_m2_spec_example_2_skd3() -> None:
    parts = allocate(2_000_000_000, [("province", 1500), ("city", 1500), ("bank", 7000)])
    assert parts == {"province": 300_000_000, "city": 300_000_000, "bank": 1_400_000_000}


def test_m2_refuses_bad_weights() -> None:
    with pytest.raises(ValueError):
        allocate(100, [])
    with pytest.raises(ValueError):
        allocate(100, [("a", 0), ("b", 0)])
    with pytest.raises(ValueError):
        allocate(-1, [("a", 1)])
    with pytest.raises(ValueError):
        allocate(100, [("a", 1), ("a", 1)])


weights = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=5).filter(
    lambda ws: sum(ws) > 0
)


@given(st.integers(min_value=0, max_value=MAX_FEN), weights)
def test_m2_exact_and_public_parts_rounded_down(amount: int, ws: list[int]) -> None:
    names = [f"p{i}" for i in range(len(ws))]
    parts = allocate(amount, list(zip(names, ws, strict=True)))
    assert sum(parts.values()) == amount
    total = sum(ws)
    for name, w in zip(names[:-1], ws[:-1], strict=True):
        exact = Fraction(amount * w, total)
        assert parts[name] <= exact < parts[name] + 1  # rounded down, by less than a fen
    last_exact = Fraction(amount * ws[-1], total)
    assert last_exact <= parts[names[-1]] < last_exact + len(ws)  # remainder goes last
    assert all(v >= 0 for v in parts.values())


# --- M-3 working days ----------------------------------------------------------------
# the years the chinesecalendar package covers, as the service seeds them; no provisional
# years, so an unpublished year is refused
LIBRARY = WorkingCalendar(library_years())
PROVISIONAL = WorkingCalendar(library_years(), provisional=provisional_year)


def test_m3_make_up_sunday_is_a_working_day() -> None:
    assert LIBRARY.is_working_day(date(2025, 9, 28))  # Sunday, 调休 make-up workday


@pytest.mark.parametrize("day", range(1, 9))
def test_m3_national_day_week_is_not_working(day: int) -> None:
    assert not LIBRARY.is_working_day(date(2025, 10, day))


def test_m3_working_days_after_national_day() -> None:
    add, between = LIBRARY.add_working_days, LIBRARY.working_days_between
    assert add(date(2025, 9, 30), 5) == Deadline(date(2025, 10, 14), False)
    assert add(date(2025, 9, 30), 10) == Deadline(date(2025, 10, 21), False)
    assert add(date(2025, 9, 30), 0) == Deadline(date(2025, 9, 30), False)
    assert between(date(2025, 9, 30), date(2025, 10, 14)).days == 5
    assert between(date(2025, 10, 14), date(2025, 9, 30)).days == 0


def test_m3_plain_weekend_is_not_working() -> None:
    assert not LIBRARY.is_working_day(date(2025, 11, 22))  # Saturday
    assert LIBRARY.is_working_day(date(2025, 11, 24))  # Monday


def test_m3_unpublished_year_is_refused_not_guessed() -> None:
    with pytest.raises(CalendarUnavailable) as info:
        LIBRARY.is_working_day(date(2099, 1, 5))
    assert info.value.status == 422
    assert info.value.code == "calendar_year_unsupported"
    assert info.value.rule == "M-3"


def test_m3_provisional_year_is_weekdays_minus_statutory_holidays() -> None:
    """2027 is not in the package: weekdays minus the statutory holidays, and every
    deadline whose counted days reach into it says provisional."""
    assert PROVISIONAL.is_provisional(date(2027, 1, 4))
    assert not PROVISIONAL.is_working_day(date(2027, 1, 1))  # 元旦, a Friday
    assert PROVISIONAL.is_working_day(date(2027, 1, 4))  # Monday
    assert not PROVISIONAL.is_working_day(date(2027, 10, 1))  # 国庆节
    assert not PROVISIONAL.is_working_day(date(2027, 2, 20))  # a Saturday: no make-up guessed
    # 2026-12-24 (Thu) + 5: 25, 28, 29, 30, 31 — all in published 2026
    assert PROVISIONAL.add_working_days(date(2026, 12, 24), 5) == Deadline(
        date(2026, 12, 31), False
    )
    # + 6 reaches 2027: 1 Jan is 元旦, so 4 Jan (provisional)
    assert PROVISIONAL.add_working_days(date(2026, 12, 24), 6) == Deadline(date(2027, 1, 4), True)
    assert PROVISIONAL.working_days_between(date(2026, 12, 24), date(2027, 1, 4)) == (6, True)


# --- M-5 clock -----------------------------------------------------------------------
def test_m5_fixed_clock() -> None:
    assert Clock(date(2026, 3, 31)).today() == date(2026, 3, 31)
    assert isinstance(Clock().today(), date)


# --- transition table ----------------------------------------------------------------
def test_transition_table_guards() -> None:
    table = TransitionTable("thing", [Transition("close", frozenset({"open"}), "closed")])
    assert table.target("close", "open") == "closed"
    with pytest.raises(Conflict) as info:
        table.target("close", "closed")
    assert info.value.code == "invalid_transition"
    with pytest.raises(ValueError):
        table.target("reopen", "closed")


def test_gc_tuning_freezes_the_startup_heap_and_raises_the_first_threshold() -> None:
    """app/kit/gc_tuning.py: 0 leaves the collector alone; a threshold freezes what is alive
    and sets the first generation's threshold, keeping the others."""
    import gc

    from app.kit import gc_tuning

    before = gc.get_threshold()
    try:
        gc_tuning.tune(0)
        assert gc.get_threshold() == before and gc.get_freeze_count() == 0
        gc_tuning.tune(50_000)
        assert gc.get_threshold() == (50_000, before[1], before[2])
        assert gc.get_freeze_count() > 10_000  # the modules, classes and caches loaded
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
