"""Calendar days in a time zone, counted by the database.

A report groups by the local day on which a thing happened. SQLite and PostgreSQL name
dates and time zones differently (strftime and 'localtime' against AT TIME ZONE), so the
statements do neither: a time (seconds since the epoch) plus the zone's UTC offset at that
time, divided by 86,400 and rounded down, is the number of the local day since 1970-01-01.
The offset changes only at the zone's transitions (summer time), and a report covers at
most a year or so, so the offset is a CASE over the few transitions in the range, found
here with zoneinfo. Rounding down is FLOOR on PostgreSQL; SQLite's CAST to INTEGER
truncates, which is the same for the positive times stored.
"""

from __future__ import annotations

import dataclasses
import zoneinfo
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from ..errors import InvalidInput

DAY = 86_400
EPOCH = date(1970, 1, 1)


class _day_number(FunctionElement[int]):  # noqa: N801 - a SQL function's name
    """floor(seconds / 86400) as an integer, for non-negative seconds."""

    type = sa.Integer()
    name = "day_number"
    inherit_cache = True


@compiles(_day_number)
def _day_number_default(element: _day_number, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(FLOOR(({compiler.process(element.clauses, **kw)}) / {DAY}) AS INTEGER)"


@compiles(_day_number, "sqlite")
def _day_number_sqlite(element: _day_number, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)}) / {DAY} AS INTEGER)"


def zone(name: str) -> tzinfo:
    """The IANA zone of that name (UTC for "UTC"); InvalidInput for one the system's time
    zone database does not know."""
    if name == "UTC":
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidInput(f"{name!r} is no time zone this system knows.",
                           code="invalid_time_zone") from exc


def _offset(zone: tzinfo, at: float) -> int:
    moment = datetime.fromtimestamp(at, zone)
    delta = moment.utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


@dataclasses.dataclass(frozen=True, slots=True)
class Days:
    """The local days `first` to `last` (both included) in `zone`: their bounds as
    seconds since the epoch, and the SQL that numbers the day of a time."""

    zone: tzinfo
    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise InvalidInput("The report's last day comes before its first.",
                               code="invalid_range")

    def midnight(self, day: date) -> float:
        local = datetime(day.year, day.month, day.day)
        # zoneinfo resolves a midnight that summer time skips or repeats by fold=0.
        return local.replace(tzinfo=self.zone).timestamp()

    @property
    def since(self) -> float:
        return self.midnight(self.first)

    @property
    def until(self) -> float:
        return self.midnight(self.last + timedelta(days=1))

    def dates(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def transitions(self) -> list[tuple[int, int]]:
        """(from when, offset) for each offset in force during the range, in order: the
        first from the range's start, each next from the second its transition took place."""
        since, until = int(self.since) - DAY, int(self.until) + DAY
        found = [(since, _offset(self.zone, since))]
        hour = since
        while hour < until:
            following = hour + 3600
            if _offset(self.zone, following) != found[-1][1]:
                low, high = hour, following  # the offset changes in (low, high]
                while high - low > 1:
                    middle = (low + high) // 2
                    if _offset(self.zone, middle) == found[-1][1]:
                        low = middle
                    else:
                        high = middle
                found.append((high, _offset(self.zone, high)))
            hour = following
        return found

    def number(self, at: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
        """The SQL for the number of the local day of the time `at` (days since 1970-01-01)."""
        steps = self.transitions()
        if len(steps) == 1:
            offset: sa.ColumnElement[Any] = sa.literal_column(str(steps[0][1]))
        else:
            # Literals, not parameters: the same text in SELECT and GROUP BY.
            pairs = zip(steps[1:], steps, strict=False)
            offset = sa.case(*((at < sa.literal_column(str(int(start))),
                                sa.literal_column(str(previous)))
                               for (start, _), (_, previous) in pairs),
                             else_=sa.literal_column(str(steps[-1][1])))
        return _day_number(at + offset)

    @staticmethod
    def day(number: int) -> date:
        return EPOCH + timedelta(days=number)
