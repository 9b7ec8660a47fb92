"""One source of time for the whole broker, so tests can drive it instead of sleeping."""

from __future__ import annotations

import asyncio
import contextlib
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


async def nap(wakeup: asyncio.Event, seconds: float) -> None:
    """A worker loop's pause: until `wakeup` is set or `seconds` have passed.

    A cancellation that something below swallowed (a library that turns CancelledError
    into an error of its own, caught by the loop's `except Exception`) is raised here
    instead, so that a worker whose task is cancelled ends (a broker's close waits for it).
    `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` swallows a cancellation
    that comes as the event is set."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wakeup.wait()
