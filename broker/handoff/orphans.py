"""Sessions whose owner is gone (logged out, or no dashboard for longer than the reconnect
window) find a new home: a collaborator, a team queue, or their end."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..clock import Clock
from ..schema import session_technicians, sessions
from ..sessions import Actor, Role, SessionService, SessionState
from ..settings import Settings
from ..technicians import TechnicianStore
from . import store
from .logins import LoginStore
from .model import Handoff, HandoffState
from .presence import PresenceBoard
from .teams import TeamStore

if TYPE_CHECKING:
    from .service import HandoffService


class Orphans:
    """The sweep's part of the handoff domain: `broker.handoffs.orphans.rehome()`."""

    def __init__(self, settings: Settings, engine: AsyncEngine, sessions: SessionService,
                 technicians: TechnicianStore, teams: TeamStore, logins: LoginStore,
                 presence: PresenceBoard, clock: Clock, handoffs: HandoffService) -> None:
        self._settings = settings
        self._engine = engine
        self._sessions = sessions
        self._technicians = technicians
        self._teams = teams
        self._logins = logins
        self._presence = presence
        self._clock = clock
        self._handoffs = handoffs

    async def rehome(self) -> int:
        """Sessions whose owner logged out, or has had no dashboard open for longer than the
        reconnect window, go to: the collaborator present longest, else the last queue the
        session was in, else the owner's first team's queue; else they end."""
        now = self._clock.now()
        window = self._settings.reconnect_window_seconds
        await self._logins.touch(self._presence.online_ids())
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(sessions).where(
                sessions.c.state != SessionState.ENDED.value,
                sessions.c.technician_id.is_not(None),
                sessions.c.queue_team_id.is_(None)))).all()
        moved = 0
        gone: dict[int, bool] = {}  # per owner, so that their logins are read once a sweep
        for row in rows:
            owner_id = row.technician_id
            if self._presence.online(owner_id):
                continue
            if owner_id not in gone:
                gone[owner_id] = await self._owner_gone(owner_id, now, window)
            if not gone[owner_id]:
                continue
            await self._rehome(row, owner_id)
            moved += 1
        return moved

    async def _owner_gone(self, owner_id: int, now: float, window: float) -> bool:
        """Logged out, or logged in but not seen for longer than `window`; False for
        API-only technicians (never logged in)."""
        if await self._logins.logged_out(owner_id):
            return True
        seen = await self._logins.gone_since(owner_id)
        return seen is not None and now - seen > window

    async def _rehome(self, row: Any, owner_id: int) -> None:
        owner = await self._technicians.get(owner_id)
        present = await self._handoffs.technicians_in(row.id)
        if present:
            heir = await self._technicians.get(present[0])
            async with self._engine.begin() as conn:
                # Conditional: with several nodes sweeping, only one moves the session.
                moved = await conn.execute(sessions.update().where(
                    sessions.c.id == row.id, sessions.c.technician_id == owner_id,
                    sessions.c.queue_team_id.is_(None)).values(technician_id=heir.id))
                if moved.rowcount != 1:
                    return
                await conn.execute(session_technicians.delete().where(
                    session_technicians.c.session_id == row.id,
                    session_technicians.c.technician_id == heir.id))
            await self._handoffs.new_owner(
                row.id, Actor(Role.TECHNICIAN, heir.id, heir.display_name), "handed_over")
            await self._sessions.record(
                row.id, "handed_over", {"from": owner.display_name, "to": heir.display_name,
                                        "from_id": owner.id, "to_id": heir.id,
                                        "stays": False, "reason": "owner_gone"})
            self._sessions.announce(await self._sessions.get(row.id), also=(owner_id, heir.id))
            return
        team_id = row.last_queue_team_id
        if team_id is None:
            owner_teams = await self._teams.of(owner_id)
            team_id = owner_teams[0].id if owner_teams else None
        if team_id is None:
            await self._sessions.end(row.id, None, "owner_gone")
            return
        note = (f"{owner.display_name} is no longer connected; the session went to the "
                f"queue automatically.")
        handoff = Handoff(secrets.token_urlsafe(12), row.id, owner_id, None, team_id, note,
                          False, HandoffState.PENDING, self._clock.now(), None, None, None,
                          None)
        async with self._engine.begin() as conn:
            # Conditional: with several nodes sweeping, only one queues the session.
            queued = await conn.execute(sessions.update().where(
                sessions.c.id == row.id, sessions.c.technician_id == owner_id,
                sessions.c.queue_team_id.is_(None)).values(
                queue_team_id=team_id, last_queue_team_id=team_id))
            if queued.rowcount != 1:
                return
            await store.insert(conn, handoff)
        await self._handoffs.announce(handoff.id)
