"""Business hours: when a response target counted in business time falls due.

Seed 003's dedicated support answers "9:00 bis 17:00 Uhr CET, Montag – Freitag": a target
of two business hours set on Friday at 16:30 falls due on Monday at 10:30. Times are
walked day by day in the configured time zone (zoneinfo), and every instant is turned
into epoch seconds before any arithmetic: an aware datetime subtracted from another in
the same zone gives their wall-clock difference, which is an hour off across a change
to or from daylight saving time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import InvalidInput

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Enough for any target: ten years of days, so a walk always ends.
_MAX_DAYS = 3660


@dataclasses.dataclass(frozen=True, slots=True)
class BusinessHours:
    """Open from `opens` to `closes` (local time in `zone`) on `days` (0: Monday)."""

    zone: ZoneInfo
    days: frozenset[int]
    opens: dt.time
    closes: dt.time

    def __post_init__(self) -> None:
        if not self.days or not self.days <= set(range(7)):
            raise ValueError("business hours need at least one day of the week")
        if not self.opens < self.closes:
            raise ValueError("business hours must open before they close")

    @classmethod
    def parse(cls, zone: str, days: str, hours: str) -> BusinessHours:
        """From settings: "Europe/Berlin", "mon,tue,wed,thu,fri", "09:00-17:00"."""
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidInput(f"business_timezone: {zone!r} is no IANA time zone") from exc
        names = [day.strip().lower()[:3] for day in days.split(",") if day.strip()]
        if not names or any(name not in DAYS for name in names):
            raise InvalidInput(f"business_days: {days!r} is not a list like mon,tue,wed")
        opens, _, closes = hours.partition("-")
        try:
            start, end = dt.time.fromisoformat(opens.strip()), dt.time.fromisoformat(
                closes.strip())
            return cls(tz, frozenset(DAYS.index(name) for name in names), start, end)
        except ValueError as exc:
            raise InvalidInput(f"business_hours: {hours!r} is not like 09:00-17:00 "
                               "(opening before closing)") from exc

    def add(self, start: float, seconds: float) -> float:
        """The instant `seconds` of business time after `start` (epoch seconds)."""
        day = dt.datetime.fromtimestamp(start, self.zone).date()
        at = start
        for _ in range(_MAX_DAYS):
            if day.weekday() in self.days:
                opens = dt.datetime.combine(day, self.opens, self.zone).timestamp()
                closes = dt.datetime.combine(day, self.closes, self.zone).timestamp()
                at = max(at, opens)
                if at < closes:
                    if at + seconds <= closes:
                        return at + seconds
                    seconds -= closes - at
            day += dt.timedelta(days=1)
        raise ValueError("a target beyond ten years of business days")
