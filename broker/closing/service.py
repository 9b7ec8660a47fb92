"""The closing form's service: admins keep the categories; after a session ended, its
technicians (the owner, every technician who took part in it) and admins record its
category, whether it was resolved and a ticket number, and may change them later.

Each save is a new row (broker/schema/closing.py), one audit record
(`session.closing_recorded`), and the webhook `closing.recorded` (broker/webhooks reads
the rows by itself). The closing is not a journal event: the session's end user never
sees it, as they never see the technicians' notes.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from ..audit import Action, AuditService
from ..clock import Clock
from ..errors import Conflict, Forbidden
from ..sessions import Access, Session, SessionService, SessionState
from ..technicians import Technician
from . import store
from .model import Closing, ClosingConfig, check


class ClosingService:
    def __init__(self, engine: AsyncEngine, sessions: SessionService, clock: Clock,
                 audit: AuditService) -> None:
        self._engine = engine
        self._sessions = sessions
        self._clock = clock
        self._audit = audit

    async def config(self) -> ClosingConfig:
        async with self._engine.connect() as conn:
            return await store.load_config(conn)

    async def set_config(self, raw: object) -> ClosingConfig:
        """Replace the categories (admins; the edge checks who asks)."""
        config = ClosingConfig.parse(raw)
        async with self._engine.begin() as conn:
            await store.save_config(conn, config, self._clock.now())
        await self._audit.record(Action.CLOSING_CATEGORIES_CHANGED, details={
            "categories": [c.id for c in config.categories]})
        return config

    async def latest(self, session_id: str) -> Closing | None:
        """The session's closing, for whoever was allowed to read the session."""
        async with self._engine.connect() as conn:
            return await store.latest(conn, session_id)

    async def read(self, session_id: str, technician: Technician) -> Closing | None:
        """The closing, for whoever may read the session's transcript."""
        await self._sessions.for_transcript(session_id, technician)
        return await self.latest(session_id)

    async def record(self, session_id: str, technician: Technician, raw: object) -> Closing:
        """Save the form for the ended session (again, to change it)."""
        session = await self._recorder(session_id, technician)
        if session.state is not SessionState.ENDED:
            raise Conflict("The closing form opens when the session has ended.",
                           code="session_not_ended")
        answers = check(await self.config(), raw)
        async with self._engine.begin() as conn:
            closing = await store.insert(conn, session.id, answers, technician.id,
                                         technician.display_name, self._clock.now())
        await self._audit.record(Action.CLOSING_RECORDED, session_id=session.id, details={
            "category": None if closing.category is None else closing.category.id,
            "resolved": closing.resolved, "ticket": closing.ticket})
        return closing

    async def _recorder(self, session_id: str, technician: Technician) -> Session:
        """The session, if `technician` may record its closing: whoever reads its
        transcript (its owner, every technician who took part, admins) but a technician
        it is only offered to."""
        session, _ = await self._sessions.for_transcript(session_id, technician)
        if await self._sessions.access(session, technician) is Access.CANDIDATE:
            raise Forbidden("Only the session's technicians record how it closed.")
        return session
