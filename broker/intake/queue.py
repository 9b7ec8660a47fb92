"""Customers' places in their teams' queues, told to them live, and the expected waits.

A change to a queue (a request arriving, one taken by a technician, a session ending)
marks its team; `interval` seconds later one pass reads the team's waiting requests in
queue order (one query) and sends `queue.position` to each customer whose place differs
from what they were last told. So however many changes come within the interval, a pass
costs one query and a frame for each customer whose place moved: those behind the
change, not the whole queue. What a pass could not see yet (a change that committed
while it read) the next pass finds, at the latest the sweep's (`refresh_all`).

The places told are kept here on one node. With several nodes they are stored with the
requests (one statement per pass), so that a node tells a customer only what no node
has told them: kept per node, a customer told 3 by one node and then 4 by nothing (the
other node having told 4 before) would keep seeing 3.

The expected wait is the customer's place times the team's recent time per pick-up: the
time since the oldest pick-up within `window` seconds, divided by how many there were.
"""

from __future__ import annotations

import asyncio
import logging
import math

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..bus import EventBus
from ..clock import Clock
from ..protocol.queue import QueuePosition
from ..sessions import Actor, Role, Signal, session_topic
from . import store
from .model import Request

log = logging.getLogger(__name__)
# The shortest span a pick-up rate is measured over: one pick-up a second ago does not
# make the next one a second away.
MIN_SPAN = 60.0


class QueueBoard:
    """Tells each waiting customer their place in the queue (see the module)."""

    def __init__(self, engine: AsyncEngine, bus: EventBus, clock: Clock, *,
                 interval: float, window: float, shared: bool) -> None:
        self._engine = engine
        self._bus = bus
        self._clock = clock
        self._interval = interval
        self._window = window
        self._dirty: set[int] = set()
        # One node: per team, what each waiting request's customer was told (None: stored).
        self._told: dict[int, dict[str, int]] | None = None if shared else {}
        self._task: asyncio.Task[None] | None = None

    def changed(self, team_id: int) -> None:
        """The team's queue changed: its customers hear of their new places soon."""
        self._dirty.add(team_id)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="queue positions")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while self._dirty:
            await asyncio.sleep(self._interval)
            teams, self._dirty = self._dirty, set()
            for team_id in sorted(teams):
                try:
                    await self.tell(team_id)
                except Exception:
                    log.exception("could not tell the queue of team %d its places", team_id)

    async def tell(self, team_id: int) -> int:
        """Send their new places to the team's customers whose place moved; how many."""
        async with self._engine.connect() as conn:
            waiting = await store.in_queue(conn, team_id)
            per_pick = await self.seconds_per_pick(conn, team_id)
        known = None if self._told is None else self._told.get(team_id, {})
        told = []
        for position, entry in enumerate(waiting, start=1):
            before = entry.told if known is None else known.get(entry.request_id)
            if before != position:
                to = Actor(Role.END_USER, entry.participant_id, "").sender
                self._bus.publish(session_topic(entry.session_id), Signal(
                    entry.session_id, QueuePosition(position, wait(position, per_pick)), to=to))
                told.append((entry.request_id, position))
        if self._told is not None:
            # Those no longer waiting are forgotten with the rest of the last pass's places.
            self._told[team_id] = {entry.request_id: position
                                   for position, entry in enumerate(waiting, start=1)}
        elif told:
            async with self._engine.begin() as conn:
                await store.set_positions(conn, told)
        return len(told)

    async def refresh_all(self) -> None:
        """Every queue with customers in it, as after a change (the sweep's safety net)."""
        async with self._engine.connect() as conn:
            teams = await store.queued_teams(conn)
        for team_id in teams:
            await self.tell(team_id)

    async def place(self, request: Request) -> QueuePosition | None:
        """Where this request waits in its team's queue now; None if it does not."""
        async with self._engine.connect() as conn:
            ahead = await store.ahead_of(conn, request)
            if ahead is None:
                return None
            per_pick = await self.seconds_per_pick(conn, request.team_id)
        return QueuePosition(ahead + 1, wait(ahead + 1, per_pick))

    async def length(self, conn: AsyncConnection, team_id: int) -> int:
        return await store.waiting_in(conn, team_id)

    async def seconds_per_pick(self, conn: AsyncConnection, team_id: int) -> float | None:
        """The team's recent time per pick-up from its queue; None without any."""
        now = self._clock.now()
        picks = await store.pick_ups(conn, team_id, now - self._window)
        if not picks:
            return None
        return max(now - picks[0], MIN_SPAN) / len(picks)


def wait(position: int, per_pick: float | None) -> int | None:
    return None if per_pick is None else math.ceil(position * per_pick)
