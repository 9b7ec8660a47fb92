"""Reading a session's transcript from its parts: the journal's events, the transfers, the
notes, the end user's survey and (for technicians) the closing form."""

from __future__ import annotations

import dataclasses

from ..closing import ClosingService
from ..handoff import HandoffService
from ..sessions import Session, SessionService
from ..survey import SurveyService
from .build import MAX_EVENTS, Reader, Transcript, build
from .sentences import Gettext


class Transcripts:
    def __init__(self, sessions: SessionService, handoffs: HandoffService,
                 survey: SurveyService, closing: ClosingService) -> None:
        self._sessions = sessions
        self._handoffs = handoffs
        self._survey = survey
        self._closing = closing

    async def readable(self, session: Session, notes: str | None, _: Gettext,
                       reader: Reader) -> Transcript:
        """`session`'s transcript; with `notes` None, the end user's copy (no notes, no
        transfers' notes: see build.py). The caller has checked who may read it."""
        events = await self._sessions.events_after(session.id, 0, MAX_EVENTS)
        notices = [] if notes is None else [
            await self._handoffs.notice(h, session=session)
            for h in await self._handoffs.history(session.id)]
        readable = build(session, events, notices, notes, _, reader)
        survey = await self._survey.response(session.id)
        if survey is not None:
            readable = dataclasses.replace(readable, survey=survey,
                                           survey_at=reader.moment(survey.submitted_at))
        # The closing form is the technicians' own, as their notes are.
        closing = None if notes is None else await self._closing.latest(session.id)
        if closing is not None:
            readable = dataclasses.replace(
                readable, closing=closing, closing_at=reader.moment(closing.recorded_at),
                closing_category=None if closing.category is None
                else closing.category.name(reader.lang))
        return readable
