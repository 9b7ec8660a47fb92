"""The intake's part of the broker's sweep: response targets, and customers who never
came to their chat.

For each request whose first response has not been seen yet: the response is looked up
(a technician's first chat line in the session; for a message, the session a technician
started from it) and recorded; at 80 % of the request's target without one, the team's
dashboards are alerted; at the target without one (or with one that came late), the miss
is recorded on the request and as the session's `request.breached` event, and the team
alerted again. Each mark is a conditional update, so with several nodes sweeping each
happens once. A chat waiting in its queue whose customer has not been seen connected
within the reconnect window ends (`not_connected`); last, every queue's places are
checked again (QueueBoard.refresh_all).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from ..bus import EventBus
from ..clock import Clock
from ..errors import Conflict
from ..handoff import TeamStore
from ..sessions import ALL_SESSIONS_TOPIC, Role, Roster, SessionService, technician_topic
from ..settings import Settings
from . import store
from .model import AlertLevel, Request, RequestKind, TargetAlert
from .queue import QueueBoard


class Sweeper:
    """See the module docstring; `run` is called by the broker's sweep."""

    def __init__(self, settings: Settings, engine: AsyncEngine, sessions: SessionService,
                 teams: TeamStore, roster: Roster, bus: EventBus, clock: Clock,
                 queue: QueueBoard) -> None:
        self._window = settings.reconnect_window_seconds
        self._engine = engine
        self._sessions = sessions
        self._teams = teams
        self._roster = roster
        self._bus = bus
        self._clock = clock
        self._queue = queue

    async def run(self) -> None:
        now = self._clock.now()
        async with self._engine.connect() as conn:
            tracked = await store.tracked(conn)
            firsts = await store.first_lines(conn, [
                r.session_id for r in tracked if r.session_id is not None])
            unconnected = await store.unconnected(conn, now - self._window)
        for request in tracked:
            await self._check(request, firsts, now)
        for request_id, session_id in unconnected:
            if Role.END_USER in await self._roster.present(session_id):
                async with self._engine.begin() as conn:
                    await store.mark(conn, request_id, connected_at=now)
            else:
                await self._sessions.end(session_id, None, "not_connected")
        await self._queue.refresh_all()

    async def _check(self, request: Request, firsts: dict[str, float], now: float) -> None:
        answered = (request.answered_at if request.kind is RequestKind.MESSAGE
                    else firsts.get(request.session_id or ""))
        if answered is not None and request.kind is RequestKind.CHAT:
            async with self._engine.begin() as conn:
                await store.mark(conn, request.id, first_response_at=answered)
        missed = answered > request.due_at if answered is not None else now >= request.due_at
        if request.breached_at is None and missed:
            await self._breach(request, now)
        elif answered is None and request.alerted_at is None and now >= request.alert_at:
            await self._alert(request, AlertLevel.DUE_SOON, "alerted_at", now)

    async def _breach(self, request: Request, now: float) -> None:
        if not await self._alert(request, AlertLevel.BREACHED, "breached_at", now):
            return
        if request.session_id is None:
            return  # a message: its breach is on the request alone
        try:
            await self._sessions.record(request.session_id, "request.breached", {
                "severity": request.severity.value, "due_at": request.due_at,
                "target_seconds": request.target.seconds,
                "business_hours": request.target.business_hours})
        except Conflict:
            pass  # the session ended meanwhile: no response is owed any more

    async def _alert(self, request: Request, level: AlertLevel, column: str,
                     now: float) -> bool:
        """Mark the request (once, whichever node sweeps first) and tell its team."""
        async with self._engine.begin() as conn:
            if not await store.mark_once(conn, request.id, column, now):
                return False
            marked = await store.get(conn, request.id)
        team = await self._teams.get(request.team_id)
        alert = TargetAlert(level, marked or request, team.name)
        for member in team.member_ids:
            self._bus.publish(technician_topic(member), alert)
        self._bus.publish(ALL_SESSIONS_TOPIC, alert)
        return True
