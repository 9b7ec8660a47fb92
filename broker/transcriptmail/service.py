"""Transcripts by email: at a session's end, to the levels that are on, each address once,
through the delivery queue (broker/delivery: stored first, retried, logged); and to the end
user at an address confirmed with a single-use code.

The code is six digits, stored only as a keyed hash (broker/hashing.py), compared in
constant time, used once (a conditional UPDATE clears it, so two nodes cannot both use
it), and works for `transcript_code_seconds`. Wrong codes count against the session in
the same limit as typed support keys (`Guesses`, in Redis with several nodes): after the
free failures each further one locks the session's guesses out for longer. At most
`MAX_CODES` codes go out per session, so the feature mails no stranger more than that.

What is queued is recorded per session and address (`transcript_mails`), before it is
queued: a session ended twice, or on two nodes, mails nobody twice.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ..clock import Clock, isoformat
from ..delivery import Channel, DeliveryService
from ..errors import Conflict, Forbidden, InvalidInput
from ..handoff import TeamStore
from ..hashing import Hasher
from ..i18n import LANGUAGES, Translations
from ..inputs import email_address
from ..preferences import PreferenceStore
from ..ratelimit import Guesses
from ..sessions import Role, Session, SessionService, SessionState
from ..sessions import store as session_store
from ..settings import Settings
from ..transcripts import Reader, Transcripts, known_zone, render
from . import store
from .model import CODE_DIGITS, MAX_CODES, Copy, Level, Recipient, recipients

log = logging.getLogger(__name__)
COMPANY, TEAM = "company", "team"


class TranscriptMail:
    def __init__(self, settings: Settings, engine: AsyncEngine, sessions: SessionService,
                 transcripts: Transcripts, deliveries: DeliveryService, teams: TeamStore,
                 preferences: PreferenceStore, hasher: Hasher, guesses: Guesses,
                 clock: Clock) -> None:
        self._settings = settings
        self._engine = engine
        self._sessions = sessions
        self._transcripts = transcripts
        self._deliveries = deliveries
        self._teams = teams
        self._preferences = preferences
        self._hasher = hasher
        self._guesses = guesses
        self._clock = clock
        self._translations = Translations(settings.default_language)

    # -- the levels (admins; the edge checks who asks) ------------------------------------

    async def level(self, scope: str, scope_id: int = 0) -> Level:
        if scope == TEAM:
            await self._teams.get(scope_id)  # NotFound for no such team
        async with self._engine.connect() as conn:
            return await store.level(conn, scope, scope_id)

    async def set_level(self, scope: str, raw: Any, scope_id: int = 0) -> Level:
        value = Level.parse(raw, known_zone)
        if scope == TEAM:
            await self._teams.get(scope_id)
        async with self._engine.begin() as conn:
            await store.save_level(conn, scope, scope_id, value, self._clock.now())
        return value

    # -- at the end -----------------------------------------------------------------------

    async def session_ended(self, session: Session) -> int:
        """Queue the transcript for every level that is on, and for the end user if they
        confirmed an address; returns how many were queued (never raises: an ended session
        must stay ended whatever the mail does)."""
        try:
            return await self._send_all(session)
        except Exception:
            log.exception("could not queue the transcripts of session %s", session.id)
            return 0

    async def _send_all(self, session: Session) -> int:
        if not self._deliveries.configured(Channel.EMAIL):
            return 0
        found: list[Recipient] = []
        async with self._engine.connect() as conn:
            company = await store.level(conn, COMPANY, 0)
            teams = [await store.level(conn, TEAM, team_id)
                     for team_id in await store.teams_of_session(conn, session.id)]
            members = await store.members(conn, session.id)
            copy = await store.copy(conn, session.id)
            notes = await session_store.notes(conn, session.id)
        for level, name in ((company, COMPANY), *((team, TEAM) for team in teams)):
            if level.enabled:
                found += [Recipient(a, name, level.language, level.time_zone)
                          for a in level.addresses]
        for technician_id, email in members:
            preferences = await self._preferences.get(technician_id)
            if preferences.transcript_email:
                found.append(Recipient(email, "technician", preferences.transcript_language,
                                       "UTC"))
        queued = 0
        for recipient in recipients(*found):
            queued += await self._send(session, recipient, notes)
        if copy is not None and copy.confirmed_at is not None:
            queued += await self._send(session, Recipient(
                copy.email, "end_user", copy.language, copy.time_zone), None)
        return queued

    async def _send(self, session: Session, recipient: Recipient, notes: str | None) -> int:
        """One transcript to one address, unless that address had this one already.
        `notes` None: the end user's copy (what only technicians read left out)."""
        async with self._engine.begin() as conn:
            if not await store.claim(conn, session.id, recipient.address, recipient.level,
                                     self._clock.now()):
                return 0
        lang = recipient.language
        _ = self._translations.gettext(lang)
        readable = await self._transcripts.readable(
            session, notes, _, Reader(lang, recipient.time_zone))
        text, html = render(readable, _, lang)
        if notes is None:
            subject = _("Your support session with %(name)s") % {
                "name": session.technician_name or _("our support team")}
        else:
            subject = _("Support session transcript: %(name)s") % {
                "name": session.end_user_name or _("Guest")}
        delivery = await self._deliveries.notify(recipient.address, subject, text, html=html,
                                                 language=lang)
        async with self._engine.begin() as conn:
            await store.sent(conn, session.id, recipient.address, delivery.id)
        return 1

    # -- the end user's copy ----------------------------------------------------------------

    async def request_copy(self, session_id: str, participant_token: str, raw_email: Any,
                           language: str, time_zone: str) -> Copy:
        """Send a code to the address the end user typed; a copy goes there once they
        type the code back (`confirm_copy`)."""
        session = await self._end_user_session(session_id, participant_token)
        if not isinstance(raw_email, str):
            raise InvalidInput("email is an address.", code="invalid_email")
        email = email_address(raw_email)
        if not self._deliveries.configured(Channel.EMAIL):
            raise Conflict("Email is not set up on this server.", code="email_not_configured")
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        now = self._clock.now()
        language = language if language in LANGUAGES else self._settings.default_language
        async with self._engine.begin() as conn:
            found = await store.copy(conn, session.id, lock=True)
            if found is not None and found.confirmed_at is not None:
                raise Conflict("A copy goes to a confirmed address already.",
                               code="copy_confirmed")
            sent = found.codes_sent if found is not None else 0
            if sent >= MAX_CODES:
                raise Conflict("No more codes can be sent for this session.",
                               code="too_many_codes")
            values = {"session_id": session.id, "email": email,
                      "code_hash": self._code_hash(session.id, code),
                      "code_expires_at": now + self._settings.transcript_code_seconds,
                      "codes_sent": sent + 1, "language": language,
                      "time_zone": time_zone, "confirmed_at": None, "created_at": now}
            await store.save_copy(conn, found, values)
        _ = self._translations.gettext(language)
        minutes = max(1, round(self._settings.transcript_code_seconds / 60))
        await self._deliveries.notify(
            email, _("Your code for a copy of the chat"),
            _("Your code: %(code)s\n\nType it on the chat page to get a copy of your "
              "support chat by email. It works for %(minutes)s minutes.\n\nIf you did not "
              "ask for a copy, ignore this email: nothing is sent without the code.")
            % {"code": code, "minutes": minutes}, language=language, secret=True)
        async with self._engine.connect() as conn:
            stored = await store.copy(conn, session.id)
        assert stored is not None
        return stored

    async def confirm_copy(self, session_id: str, participant_token: str,
                           raw_code: Any) -> tuple[Copy, bool]:
        """The code back from the end user: their address is confirmed, and the copy goes
        at once if the session has ended (else at its end). Returns the copy and whether
        it was queued now."""
        session = await self._end_user_session(session_id, participant_token)
        code = "".join(str(raw_code).split()) if isinstance(raw_code, (str, int)) else ""
        async with self._guesses.attempt(f"transcript-code:{session.id}",
                                         include_global=False) as attempt:
            async with self._engine.connect() as conn:
                found = await store.copy(conn, session.id)
            if found is None or found.code_hash is None:
                raise Conflict("No code is waiting: ask for one first.", code="no_code")
            if self._clock.now() >= found.code_expires_at:
                raise Conflict("The code has expired: ask for a new one.", code="code_expired")
            given = self._code_hash(session.id, code)
            if not hmac.compare_digest(given, found.code_hash):
                attempt.fail()
                raise InvalidInput("That is not the code we sent.", code="wrong_code")
            async with self._engine.begin() as conn:
                if not await store.use_code(conn, session.id, given, self._clock.now()):
                    raise Conflict("No code is waiting: ask for one first.", code="no_code")
        session = await self._sessions.get(session.id)
        sent = False
        if session.state is SessionState.ENDED:
            sent = bool(await self._send(session, Recipient(
                found.email, "end_user", found.language, found.time_zone), None))
        async with self._engine.connect() as conn:
            confirmed = await store.copy(conn, session.id)
        assert confirmed is not None
        return confirmed, sent

    async def copy(self, session_id: str) -> Copy | None:
        """The end user's request for a copy, if any (for their page)."""
        async with self._engine.connect() as conn:
            return await store.copy(conn, session_id)

    async def _end_user_session(self, session_id: str, token: str) -> Session:
        session, actor = await self._sessions.for_participant(session_id, token)
        if actor.role is not Role.END_USER:
            raise Forbidden("Only the session's end user asks for a copy.")
        return session

    def _code_hash(self, session_id: str, code: str) -> str:
        return self._hasher.hash("transcript-copy", f"{session_id}\x00{code}")


def copy_json(found: Copy) -> dict[str, Any]:
    return {"email": found.email, "confirmed": found.confirmed_at is not None,
            "code_expires_at": None if found.code_hash is None
            else isoformat(found.code_expires_at)}
