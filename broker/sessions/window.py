"""The reconnect window: an end user whose last connection closes has
`reconnect_window_seconds` to come back before the session ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..clock import Clock
from ..errors import Conflict
from ..schema import participants, sessions
from ..settings import Settings
from .journal import Journal
from .model import Actor, Role, SessionState
from .ports import Roster

if TYPE_CHECKING:
    from .service import SessionService


class ReconnectWindow:
    """Opens and closes end users' reconnect windows, and ends the sessions whose window
    passed. `broker.sessions.window`."""

    def __init__(self, settings: Settings, engine: AsyncEngine, journal: Journal,
                 clock: Clock, roster: Roster, sessions: SessionService) -> None:
        self._settings = settings
        self._engine = engine
        self._journal = journal
        self._clock = clock
        self._roster = roster
        self._sessions = sessions

    async def end_user_left(self, session_id: str, actor: Actor | None,
                            reason: str = "connection_lost") -> None:
        """The end user's last connection closed: the reconnect window starts, unless they
        are connected still (another socket, perhaps on another node)."""
        if Role.END_USER in await self._roster.present(session_id):
            return
        deadline = self._clock.now() + self._settings.reconnect_window_seconds
        try:
            await self._journal.append(
                session_id, "disconnected", {"reason": reason, "deadline": deadline},
                author=actor, new_state=SessionState.RECONNECTING,
                columns={"reconnect_deadline": deadline})
        except Conflict:
            return  # not active (ended, or already reconnecting): nothing to start
        self._sessions.announce(await self._sessions.get(session_id))
        # Stored first, then looked again: an end user who connected meanwhile found the
        # session still active, so their return is recorded here (one of the two sees it).
        if Role.END_USER in await self._roster.present(session_id):
            await self.end_user_back(session_id, actor or await self._end_user(session_id))

    async def end_user_back(self, session_id: str, actor: Actor | None) -> bool:
        """An end user connected: a running reconnect window is over. True if one was
        (or if it had closed already and the session ended now: coming back too late, a
        moment before the sweep noticed, does not revive it)."""
        if await self._journal.state(session_id, fresh=True) is not SessionState.RECONNECTING:
            return False
        deadline = (await self._sessions.get(session_id)).reconnect_deadline
        if deadline is not None and self._clock.now() >= deadline:
            await self._sessions.end(session_id, None, "reconnect_timeout")
            return True
        try:
            await self._journal.append(
                session_id, "reconnected", {}, author=actor, new_state=SessionState.ACTIVE,
                columns={"reconnect_deadline": None})
        except Conflict:
            return False  # ended (or back) in the meantime
        self._sessions.announce(await self._sessions.get(session_id))
        return True

    async def _end_user(self, session_id: str) -> Actor | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(participants).where(
                participants.c.session_id == session_id,
                participants.c.role == Role.END_USER.value)
                .order_by(participants.c.id.desc()).limit(1))).first()
        return None if row is None else Actor(Role(row.role), row.id, row.display_name)

    async def end_lapsed(self) -> int:
        """End sessions whose end user did not come back within the window."""
        async with self._engine.connect() as conn:
            ids = (await conn.scalars(sa.select(sessions.c.id).where(
                sessions.c.state == SessionState.RECONNECTING.value,
                sessions.c.reconnect_deadline <= self._clock.now()))).all()
        for session_id in ids:
            await self._sessions.end(session_id, None, "reconnect_timeout")
        return len(ids)

    async def recover_after_restart(self, session_ids: list[str] | None = None) -> int:
        """At start-up nobody is connected to this process yet: the active sessions whose
        end users were connected to it (`session_ids`; None: every active session, as
        with one node) wait for their end users as if they had just dropped. Sessions
        already waiting keep their stored deadline."""
        if session_ids is None:
            async with self._engine.connect() as conn:
                session_ids = list((await conn.scalars(sa.select(sessions.c.id).where(
                    sessions.c.state == SessionState.ACTIVE.value))).all())
        for session_id in session_ids:
            await self.end_user_left(session_id, None, "broker_restart")
        return len(session_ids)
