"""The business clock (SPEC M-5). "Today" is the date in China Standard Time, or the fixed
APP_TODAY outside production. Services take `today` as an argument; only endpoints read
the clock, through the `get_today` dependency."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from fastapi import Request

CHINA_TZ = ZoneInfo("Asia/Shanghai")


class Clock:
    def __init__(self, fixed_today: date | None = None) -> None:
        self.fixed_today = fixed_today

    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self) -> date:
        if self.fixed_today is not None:
            return self.fixed_today
        return datetime.now(CHINA_TZ).date()


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_today(request: Request) -> date:
    """The business date (a dependency; a coroutine, as it blocks on nothing)."""
    return get_clock(request).today()
