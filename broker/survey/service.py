"""The survey service: admins set the questions; a session's end user answers them once,
after the session ended.

The answers are stored in `survey_responses` (one row per session, so a second survey is
refused by the database, on any node) and then told as the journal event
`survey.completed`, from which the webhook of that name goes out (broker/webhooks reads
the journal) and which the transcript skips (it shows the stored answers at its end).
If the event cannot be stored, the answers are taken back, so that the end user may send
them again.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..clock import Clock
from ..errors import Conflict, Forbidden
from ..sessions import Journal, Role, SessionService, SessionState
from . import store
from .model import LANGUAGES, SurveyConfig, SurveyResponse

EVENT = "survey.completed"


class SurveyService:
    def __init__(self, engine: AsyncEngine, sessions: SessionService, journal: Journal,
                 clock: Clock, default_language: str) -> None:
        self._engine = engine
        self._sessions = sessions
        self._journal = journal
        self._clock = clock
        self._default_language = default_language

    async def config(self) -> SurveyConfig:
        async with self._engine.connect() as conn:
            return await store.load_config(conn)

    async def set_config(self, raw: object) -> SurveyConfig:
        """Replace the whole configuration (admins; the edge checks who asks)."""
        config = SurveyConfig.parse(raw)
        async with self._engine.begin() as conn:
            await store.save_config(conn, config, self._clock.now())
        return config

    async def response(self, session_id: str) -> SurveyResponse | None:
        async with self._engine.connect() as conn:
            return await store.load_response(conn, session_id)

    async def submit(self, session_id: str, participant_token: str, raw: object,
                     language: str | None) -> SurveyResponse:
        """The end user's answers for their ended session, once."""
        session, actor = await self._sessions.for_participant(session_id, participant_token)
        if actor.role is not Role.END_USER:
            raise Forbidden("Only the session's end user answers its survey.")
        if session.state is not SessionState.ENDED:
            raise Conflict("The survey opens when the session has ended.",
                           code="session_not_ended")
        config = await self.config()
        if not config.asks:
            raise Conflict("The survey is switched off.", code="survey_off")
        response = SurveyResponse(session.id, config.check(raw),
                                  language if language in LANGUAGES
                                  else self._default_language, self._clock.now())
        try:
            async with self._engine.begin() as conn:
                await store.insert_response(conn, response, actor.id)
        except sa.exc.IntegrityError:
            raise Conflict("This session's survey has been answered already.",
                           code="survey_done") from None
        try:
            await self._journal.append(session.id, EVENT, response.answers.to_json(),
                                       author=actor, client_id="survey", allow_ended=True)
        except Exception:
            async with self._engine.begin() as conn:
                await store.delete_response(conn, session.id)
            raise
        return response
