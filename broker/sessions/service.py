"""Starting, joining, talking in and ending support sessions, with who-may-do-what checks."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..audit import Action, AuditService
from ..bus import EventBus
from ..clock import Clock
from ..credentials import Credential
from ..errors import (
    KEY_UNKNOWN,
    Conflict,
    Forbidden,
    InvalidInput,
    KeyRejected,
    NotFound,
    Unauthenticated,
)
from ..hashing import Hasher
from ..keys import IssuedKey, KeyRecord, KeyStore, parse_key
from ..metrics import Metrics
from ..ratelimit import KeyedBuckets
from ..schema import sessions, support_keys
from ..settings import Settings
from ..technicians import Technician
from . import search, store
from .journal import Journal
from .model import Access, Actor, Event, Role, Session, SessionState
from .ports import Candidacy, Roster, SessionEndHook
from .webpage import goto_url, open_url
from .window import ReconnectWindow

END_USER_DEFAULT_NAME = "Guest"
MAX_NOTES = 20_000


ALL_SESSIONS_TOPIC = "sessions"  # every session change, for admins' dashboards


def technician_topic(technician_id: int) -> str:
    return f"technician:{technician_id}"


@dataclasses.dataclass(frozen=True, slots=True)
class Redemption:
    """What an end user gets for a good key: their session and their credential for it."""

    session_id: str
    participant_token: str
    actor: Actor
    session: Session


class SessionService:
    """The session domain. Knows nothing of HTTP; `web/` calls it and maps its errors."""

    def __init__(self, settings: Settings, engine: AsyncEngine, journal: Journal,
                 keys: KeyStore, hasher: Hasher, bus: EventBus, clock: Clock,
                 chat_limiter: KeyedBuckets, metrics: Metrics, roster: Roster,
                 audit: AuditService) -> None:
        self._settings = settings
        self._audit = audit
        self._roster = roster
        self._metrics = metrics
        self._engine = engine
        self._journal = journal
        self._keys = keys
        self._hasher = hasher
        self._bus = bus
        self._clock = clock
        self._chat_limiter = chat_limiter
        self._end_hooks: list[SessionEndHook] = []
        self._after_end: list[Callable[[Session], Awaitable[object]]] = []
        self._candidacies: list[Candidacy] = []
        self.window = ReconnectWindow(settings, engine, journal, clock, roster, self)

    def on_end(self, hook: SessionEndHook) -> None:
        """Have `hook` take part in every session's end, in the same transaction."""
        self._end_hooks.append(hook)

    def after_end(self, callback: Callable[[Session], Awaitable[object]]) -> None:
        """Have `callback` told of each session this node ended, once its end is stored
        (the transcript is complete then); it must not raise."""
        self._after_end.append(callback)

    def candidates_from(self, candidacy: Candidacy) -> None:
        """Count the technicians `candidacy` names as candidates in `access`."""
        self._candidacies.append(candidacy)

    # -- starting and joining ---------------------------------------------------------

    async def start(self, technician: Technician,
                    lifetime: float | None = None) -> tuple[Session, IssuedKey]:
        lifetime = self._settings.key_lifetime_seconds if lifetime is None else lifetime
        if not 0 < lifetime <= self._settings.key_lifetime_max_seconds:
            raise InvalidInput(
                f"key lifetime must be 1 to {self._settings.key_lifetime_max_seconds} seconds")
        now = self._clock.now()
        session_id = secrets.token_urlsafe(16)
        async with self._engine.begin() as conn:
            await conn.execute(store.INSERT_SESSION, {
                "id": session_id, "technician_id": technician.id,
                "state": SessionState.WAITING.value, "created_at": now})
            key = await self._keys.issue(conn, session_id, now, lifetime)
        self._metrics.keys_issued.inc()
        self._journal.seed(session_id, SessionState.WAITING)
        await self._journal.append(session_id, "created", {"expires_at": key.expires_at},
                                   author=self.technician_actor(technician))
        # Everything about the new session is known here: no need to read it back.
        session = Session(session_id, technician.id, technician.display_name,
                          SessionState.WAITING, now, None, None, None, None, key.expires_at)
        self.announce(session)
        return session, key

    async def check_key(self, *, code: str | None = None, token: str | None = None) -> KeyRecord:
        """The key's record if it could be redeemed now; raises KeyRejected saying why not."""
        try:
            async with self._engine.connect() as conn:
                record = await self._keys.find(conn, **parse_key(code, token))
        except KeyRejected as refused:
            self._guessed(refused)
            raise
        rejection = record.rejection(self._clock.now())
        if rejection is not None:
            raise rejection
        return record

    def _guessed(self, refused: KeyRejected) -> None:
        """A key nobody was given (a guess, or a typo): counted for the audit log."""
        if refused.code == KEY_UNKNOWN:
            self._audit.guess_failed()

    async def redeem(self, *, code: str | None = None, token: str | None = None,
                     name: str | None = None) -> Redemption:
        """Consume a key (exactly once, even when raced) and admit its end user."""
        name = _clean_name(name) or END_USER_DEFAULT_NAME
        now = self._clock.now()
        async with self._engine.begin() as conn:
            try:
                record = await self._keys.find(conn, **parse_key(code, token))
                await self._keys.consume(conn, record, now)
            except KeyRejected as refused:
                self._metrics.keys_refused.labels(refused.code).inc()
                self._guessed(refused)
                raise
            participant_token, actor = await self._admit(conn, record.session_id, name, now)
        self._metrics.keys_redeemed.inc()
        await self._journal.append(
            record.session_id, "joined", {}, author=actor, new_state=SessionState.ACTIVE,
            columns={"started_at": now, "end_user_name": name})
        session = await self.get(record.session_id)
        self.announce(session)
        return Redemption(record.session_id, participant_token, actor, session)

    async def open_unowned(self, name: str, first: tuple[str, dict[str, Any]]) -> Redemption:
        """A session its end user starts (a customer's request, broker/intake): nobody
        owns it until a technician takes it from a queue, and the end user is admitted at
        once, without a key; it is active from the start. `first` is its first event."""
        name = _clean_name(name) or END_USER_DEFAULT_NAME
        now = self._clock.now()
        session_id = secrets.token_urlsafe(16)
        async with self._engine.begin() as conn:
            await conn.execute(store.INSERT_SESSION, {
                "id": session_id, "technician_id": None, "state": SessionState.ACTIVE.value,
                "created_at": now, "started_at": now, "end_user_name": name})
            participant_token, actor = await self._admit(conn, session_id, name, now)
        self._journal.seed(session_id, SessionState.ACTIVE)
        await self._journal.append(session_id, first[0], first[1], author=actor)
        session = Session(session_id, None, None, SessionState.ACTIVE, now, now, None, None,
                          name, None)
        self.announce(session)
        return Redemption(session_id, participant_token, actor, session)

    async def admit_like(self, session_id: str, participant_id: int) -> tuple[str, Actor] | None:
        """Admit another end-user participant under the name of participant
        `participant_id` of this session (the end user's agent, for the end user whose page
        asked for its link): its token and actor; None if there is no such participant."""
        async with self._engine.begin() as conn:
            name = await conn.scalar(store.PARTICIPANT_NAME, {
                "session_id": session_id, "participant_id": participant_id})
            if name is None:
                return None
            return await self._admit(conn, session_id, str(name), self._clock.now())

    async def _admit(self, conn: AsyncConnection, session_id: str, name: str,
                     now: float) -> tuple[str, Actor]:
        """A new end-user participant: its credential (stored only as a hash) and actor."""
        participant_token = Credential.PARTICIPANT.new()
        result = await conn.execute(store.INSERT_PARTICIPANT, {
            "session_id": session_id, "role": Role.END_USER.value,
            "token_hash": self._hasher.hash("participant", participant_token),
            "display_name": name, "created_at": now})
        (participant_id,) = result.inserted_primary_key or (0,)
        return participant_token, Actor(Role.END_USER, int(participant_id), name)

    async def participant(self, token: str) -> tuple[str, Actor]:
        """The session and actor a participant token belongs to."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(store.PARTICIPANT_BY_TOKEN, {
                "digest": self._hasher.hash("participant", token)})).first()
        if row is None:
            raise Unauthenticated("Unknown participant token.")
        return row.session_id, Actor(Role(row.role), row.id, row.display_name)

    # -- reading -----------------------------------------------------------------------

    async def get(self, session_id: str) -> Session:
        async with self._engine.connect() as conn:
            session = await store.load(conn, session_id)
        if session is None:
            raise NotFound("No such session.")
        return session

    async def access(self, session: Session, technician: Technician) -> Access:
        """What `technician` may do with `session` (see Access); `session` as just read by
        `get`, whose `collaborator_ids` are the technicians present in it now."""
        if technician.is_admin:
            return Access.ADMIN
        if session.technician_id == technician.id:
            return Access.OWNER
        if technician.id in session.collaborator_ids:
            return Access.COLLABORATOR
        for candidacy in self._candidacies:
            if await candidacy.offered_to(session.id, technician.id):
                return Access.CANDIDATE
        return Access.NONE

    async def for_technician(self, session_id: str, technician: Technician,
                             need: Access = Access.COLLABORATOR) -> Session:
        """The session, if this technician's access to it is at least `need`: candidates
        (offered a handoff) may read, collaborators also write, owners and admins manage."""
        session = await self.get(session_id)
        if await self.access(session, technician) < need:
            raise Forbidden("This session belongs to another technician.")
        return session

    async def for_transcript(self, session_id: str,
                             technician: Technician) -> tuple[Session, str]:
        """The session and its notes, for its transcript: for whoever may read it now
        (candidates and up) and for every technician who ever took part in it, also after
        handing it over or leaving, live or ended. Reading it live stays theirs alone."""
        session = await self.get(session_id)
        reads = await self.access(session, technician) >= Access.CANDIDATE
        async with self._engine.connect() as conn:
            if not (reads or await store.took_part(conn, session_id, technician.id)):
                raise Forbidden("This session belongs to another technician.")
            return session, await store.notes(conn, session_id)

    async def for_participant(self, session_id: str, token: str) -> tuple[Session, Actor]:
        """The session, if `token` is a participant credential for exactly this session."""
        token_session, actor = await self.participant(token)
        if token_session != session_id:
            raise Forbidden("This credential is for another session.")
        return await self.get(session_id), actor

    async def visible_to(self, technician: Technician, *, limit: int = 200) -> list[Session]:
        """The technician's own sessions and those they collaborate in (admins: all)."""
        async with self._engine.connect() as conn:
            return await store.load_visible(
                conn, None if technician.is_admin else technician.id, limit)

    async def count_by_state(self) -> dict[SessionState, int]:
        """Sessions in each state, across the cluster (every state, 0 for none)."""
        async with self._engine.connect() as conn:
            return await store.count_by_state(conn)

    async def live_key(self, session_id: str) -> IssuedKey | None:
        """The session's key in plain while it can still start the session (its owner's
        dashboard shows it in any browser); None once used, revoked or expired."""
        async with self._engine.connect() as conn:
            try:
                return await self._keys.reveal(conn, session_id, self._clock.now())
            except KeyRejected:
                return None

    async def events_after(self, session_id: str, after: int = 0,
                           limit: int = 1000) -> list[Event]:
        if after < 0 or not 0 < limit <= 10_000:
            raise InvalidInput("after must be >= 0 and limit 1 to 10000")
        return await self._journal.events_after(session_id, after, limit)

    # -- acting ------------------------------------------------------------------------

    async def post_message(self, session_id: str, author: Actor, text: str,
                           client_id: str | None = None) -> tuple[int, bool]:
        """Store a chat line; returns its sequence number and whether it was a resend."""
        text = text.strip()
        if not text:
            raise InvalidInput("An empty message was not sent.", code="message_empty")
        if len(text.encode()) > self._settings.chat_max_bytes:
            raise InvalidInput(
                f"Messages are limited to {self._settings.chat_max_bytes} bytes.",
                code="message_too_long")
        if client_id is not None and not (0 < len(client_id) <= 64):
            raise InvalidInput("A client message id has 1 to 64 characters.")
        if author.role is not Role.TECHNICIAN and (
                await self._journal.state(session_id) is SessionState.WAITING
                and await self._journal.state(session_id, fresh=True) is SessionState.WAITING):
            raise Conflict("The session has not started.", code="session_waiting")
        # Per participant, whichever socket or API call the message comes through.
        self._chat_limiter.take(f"{session_id}:{author.sender}")
        data: dict[str, Any] = {"text": text}
        if author.role is Role.TECHNICIAN and (url := open_url(text)) is not None:
            data["open_url"] = url
        elif author.role is Role.TECHNICIAN and (url := goto_url(text)) is not None:
            data["goto_url"] = url
        # Checked again when stored: another node may have changed the session meanwhile.
        seq, resend = await self._journal.append(
            session_id, "message", data, author=author, client_id=client_id,
            allow_waiting=author.role is Role.TECHNICIAN)
        if not resend:
            self._metrics.messages.inc()
        return seq, resend

    async def notes(self, session_id: str, technician: Technician) -> str:
        """The technicians' notes on the session (never shown to the end user)."""
        await self.for_technician(session_id, technician, Access.CANDIDATE)
        async with self._engine.connect() as conn:
            return await store.notes(conn, session_id)

    async def set_notes(self, session_id: str, technician: Technician, text: str) -> str:
        await self.for_technician(session_id, technician, Access.COLLABORATOR)
        if len(text) > MAX_NOTES:
            raise InvalidInput(f"Notes have at most {MAX_NOTES} characters.")
        async with self._engine.begin() as conn:
            await conn.execute(sessions.update().where(sessions.c.id == session_id).values(
                notes=text))
            await search.replace(conn, session_id, "notes", text)
        # Not the notes themselves: they may quote what the end user said.
        await self._audit.record(Action.NOTES_CHANGED, session_id=session_id,
                                 details={"length": len(text)})
        return text

    async def end(self, session_id: str, by: Actor | None, reason: str) -> Session:
        now = self._clock.now()
        async with self._engine.begin() as conn:
            await self._keys.retire(conn, session_id, now)
            for hook in self._end_hooks:
                await hook.session_ended(conn, session_id, now)
        try:
            await self._journal.append(
                session_id, "ended", {"reason": reason}, author=by, new_state=SessionState.ENDED,
                columns={"ended_at": now, "end_reason": reason})
            ended_now = True
        except Conflict:
            ended_now = False  # already ended: ending twice is not an error
        session = await self.get(session_id)
        self.announce(session)
        self._journal.forget(session_id)
        if ended_now:
            for callback in self._after_end:
                await callback(session)
        return session

    async def revoke_key(self, session_id: str, by: Actor) -> Session:
        session = await self.get(session_id)
        if session.state is not SessionState.WAITING:
            raise Conflict("Only a waiting session's key can be revoked.", code="not_waiting")
        async with self._engine.begin() as conn:
            revoked = await self._keys.revoke(conn, session_id, self._clock.now())
        if not revoked:
            raise Conflict("The key can no longer be revoked.", code="not_waiting")
        return await self.end(session_id, by, "key_revoked")

    async def end_unjoined(self) -> int:
        """End waiting sessions whose key expired unused; returns how many."""
        async with self._engine.connect() as conn:
            ids = (await conn.scalars(
                sa.select(sessions.c.id).join(support_keys).where(
                    sessions.c.state == SessionState.WAITING.value,
                    support_keys.c.expires_at <= self._clock.now()))).all()
        for session_id in ids:
            await self.end(session_id, None, "key_expired")
        return len(ids)

    async def record(self, session_id: str, type: str, data: dict[str, Any], *,
                     author: Actor | None = None) -> int:
        """Store a system event (a handover, a collaborator joining) in the session's log."""
        seq, _ = await self._journal.append(session_id, type, data, author=author)
        return seq

    def announce(self, session: Session, also: tuple[int, ...] = ()) -> None:
        """Push a changed session to its owner's dashboard, to `also`, and to admins."""
        for technician_id in {session.technician_id, *also}:
            if technician_id is not None:  # nobody owns a request in a queue
                self._bus.publish(technician_topic(technician_id), session)
        self._bus.publish(ALL_SESSIONS_TOPIC, session)

    def technician_actor(self, technician: Technician) -> Actor:
        return Actor(Role.TECHNICIAN, technician.id, technician.display_name)


def _clean_name(name: str | None) -> str:
    if name is None:
        return ""
    name = " ".join(name.split())
    if len(name) > 80:
        raise InvalidInput("A name has at most 80 characters.")
    return name
