"""What a report is asked for: its days, the time zone they are counted in, and whose
figures (one team's, one technician's), parsed from the API's query parameters."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import date, datetime, timedelta, tzinfo

from ..errors import InvalidInput
from ..inputs import whole_number
from .days import Days, zone

DEFAULT_DAYS = 30
MAX_DAYS = 400  # a year and a bit: a year's report with its neighbouring weeks
FIRST_DAY, LAST_DAY = date(1970, 1, 2), date(9998, 12, 31)  # seconds since 1970 stay positive


class Grouping(enum.Enum):
    """The rows of a report: one per local day, per technician or per team."""

    DAY = "daily"
    TECHNICIAN = "technicians"
    TEAM = "teams"


@dataclasses.dataclass(frozen=True, slots=True)
class ReportQuery:
    grouping: Grouping
    days: Days
    zone_name: str
    team_id: int | None = None
    technician_id: int | None = None

    def __post_init__(self) -> None:
        if self.days.first < FIRST_DAY or self.days.last > LAST_DAY:
            raise InvalidInput(f"A report's days are from {FIRST_DAY} to {LAST_DAY}.",
                               code="invalid_range")
        if (self.days.last - self.days.first).days + 1 > MAX_DAYS:
            raise InvalidInput(f"A report covers at most {MAX_DAYS} days.", code="invalid_range")

    @classmethod
    def parse(cls, grouping: Grouping, params: Mapping[str, str], *, default_zone: str,
              now: float) -> ReportQuery:
        """From: from and to (ISO dates, both included; default the last 30 days up to
        today), tz (an IANA time zone; default `default_zone`), team_id, technician_id."""
        name = params.get("tz") or default_zone
        where = zone(name)
        today = datetime.fromtimestamp(now, where).date()
        last = _date(params, "to") or today
        first = _date(params, "from") or max(last, FIRST_DAY + timedelta(days=DEFAULT_DAYS)) \
            - timedelta(days=DEFAULT_DAYS - 1)
        return cls(grouping, Days(where, first, last), name,
                   team_id=_whole(params, "team_id"),
                   technician_id=_whole(params, "technician_id"))

    @property
    def zone(self) -> tzinfo:
        return self.days.zone


def _date(params: Mapping[str, str], name: str) -> date | None:
    text = params.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text) if len(text) == 10 else _bad(name, text)
    except ValueError:
        return _bad(name, text)


def _bad(name: str, text: str) -> date:
    raise InvalidInput(f"{name} must be a date (YYYY-MM-DD), not {text[:40]!r}.",
                       code="invalid_time")


def _whole(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name)
    return None if value is None or value == "" else whole_number(value, name)
