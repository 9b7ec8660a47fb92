"""One source of time for the whole broker, so tests can drive it instead of sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time in seconds since the epoch (UTC)."""

    def now(self) -> float: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock that moves only when told to; for tests."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._now += seconds


def isoformat(timestamp: float) -> str:
    """ISO 8601 with an explicit UTC offset, as the API promises."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
