"""Starting, joining, talking in and ending support sessions, with who-may-do-what checks."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..bus import EventBus
from ..clock import Clock
from ..db import (
    handoffs,
    participants,
    session_technicians,
    sessions,
    support_keys,
    team_members,
    technicians,
)
from ..errors import Conflict, Forbidden, InvalidInput, KeyRejected, NotFound, Unauthenticated
from ..hashing import Hasher
from ..keys import IssuedKey, KeyRecord, KeyStore, parse_code, parse_token
from ..metrics import Metrics
from ..ratelimit import KeyedBuckets
from ..settings import Settings
from ..technicians import Technician
from .journal import Journal
from .model import Access, Actor, Event, Role, Session, SessionState

END_USER_DEFAULT_NAME = "Guest"


ALL_SESSIONS_TOPIC = "sessions"  # every session change, for admins' dashboards


def technician_topic(technician_id: int) -> str:
    return f"technician:{technician_id}"


class Roster(Protocol):
    """Who has a socket open to a session, on any node (broker/nodes.py)."""

    async def present(self, session_id: str) -> frozenset[Role]: ...


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
                 chat_limiter: KeyedBuckets, metrics: Metrics, roster: Roster) -> None:
        self._settings = settings
        self._roster = roster
        self._metrics = metrics
        self._engine = engine
        self._journal = journal
        self._keys = keys
        self._hasher = hasher
        self._bus = bus
        self._clock = clock
        self._chat_limiter = chat_limiter

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
            await conn.execute(_INSERT_SESSION, {
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
        self._notify_technician(session)
        return session, key

    async def check_key(self, *, code: str | None = None, token: str | None = None) -> KeyRecord:
        """The key's record if it could be redeemed now; raises KeyRejected saying why not."""
        async with self._engine.connect() as conn:
            record = await self._keys.find(conn, **_parsed(code, token))
        rejection = record.rejection(self._clock.now())
        if rejection is not None:
            raise rejection
        return record

    async def redeem(self, *, code: str | None = None, token: str | None = None,
                     name: str | None = None) -> Redemption:
        """Consume a key (exactly once, even when raced) and admit its end user."""
        name = _clean_name(name) or END_USER_DEFAULT_NAME
        now = self._clock.now()
        participant_token = "sbp_" + secrets.token_urlsafe(32)
        async with self._engine.begin() as conn:
            try:
                record = await self._keys.find(conn, **_parsed(code, token))
                await self._keys.consume(conn, record, now)
            except KeyRejected as refused:
                self._metrics.keys_refused.labels(refused.code).inc()
                raise
            result = await conn.execute(_INSERT_PARTICIPANT, {
                "session_id": record.session_id, "role": Role.END_USER.value,
                "token_hash": self._hasher.hash("participant", participant_token),
                "display_name": name, "created_at": now})
            (participant_id,) = result.inserted_primary_key or (0,)
        self._metrics.keys_redeemed.inc()
        actor = Actor(Role.END_USER, int(participant_id), name)
        await self._journal.append(
            record.session_id, "joined", {}, author=actor, new_state=SessionState.ACTIVE,
            columns={"started_at": now, "end_user_name": name})
        session = await self.get(record.session_id)
        self._notify_technician(session)
        return Redemption(record.session_id, participant_token, actor, session)

    async def participant(self, token: str) -> tuple[str, Actor]:
        """The session and actor a participant token belongs to."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(_PARTICIPANT_BY_TOKEN, {
                "digest": self._hasher.hash("participant", token)})).first()
        if row is None:
            raise Unauthenticated("Unknown participant token.")
        return row.session_id, Actor(Role(row.role), row.id, row.display_name)

    # -- reading -----------------------------------------------------------------------

    async def get(self, session_id: str) -> Session:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_SESSION_BY_ID, {"session_id": session_id})).first()
            if row is None:
                raise NotFound("No such session.")
            helpers = await _collaborators(conn, [session_id])
        return _session_from_row(row, helpers.get(session_id, ()))

    async def access(self, session: Session, technician: Technician) -> Access:
        """What `technician` may do with `session` (see Access); `session` as just read by
        `get`, whose `collaborator_ids` are the technicians present in it now."""
        if technician.is_admin:
            return Access.ADMIN
        if session.technician_id == technician.id:
            return Access.OWNER
        if technician.id in session.collaborator_ids:
            return Access.COLLABORATOR
        async with self._engine.connect() as conn:
            my_teams = sa.select(team_members.c.team_id).where(
                team_members.c.technician_id == technician.id)
            offered = await conn.scalar(sa.select(handoffs.c.id).where(
                handoffs.c.session_id == session.id, handoffs.c.state == "pending",
                sa.or_(handoffs.c.to_technician_id == technician.id,
                       handoffs.c.to_team_id.in_(my_teams))).limit(1))
        return Access.CANDIDATE if offered else Access.NONE

    async def for_technician(self, session_id: str, technician: Technician,
                             need: Access = Access.COLLABORATOR) -> Session:
        """The session, if this technician's access to it is at least `need`: candidates
        (offered a handoff) may read, collaborators also write, owners and admins manage."""
        session = await self.get(session_id)
        if await self.access(session, technician) < need:
            raise Forbidden("This session belongs to another technician.")
        return session

    async def for_participant(self, session_id: str, token: str) -> tuple[Session, Actor]:
        """The session, if `token` is a participant credential for exactly this session."""
        token_session, actor = await self.participant(token)
        if token_session != session_id:
            raise Forbidden("This credential is for another session.")
        return await self.get(session_id), actor

    async def visible_to(self, technician: Technician, *, limit: int = 200) -> list[Session]:
        """The technician's own sessions and those they collaborate in (admins: all)."""
        query = _session_query().order_by(sessions.c.created_at.desc()).limit(limit)
        if not technician.is_admin:
            collaborating = sa.select(session_technicians.c.session_id).where(
                session_technicians.c.technician_id == technician.id,
                session_technicians.c.left_at.is_(None))
            query = query.where(sa.or_(sessions.c.technician_id == technician.id,
                                       sessions.c.id.in_(collaborating)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            helpers = await _collaborators(conn, [row.id for row in rows])
        return [_session_from_row(row, helpers.get(row.id, ())) for row in rows]

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
        # Checked again when stored: another node may have changed the session meanwhile.
        seq, resend = await self._journal.append(
            session_id, "message", {"text": text}, author=author, client_id=client_id,
            allow_waiting=author.role is Role.TECHNICIAN)
        if not resend:
            self._metrics.messages.inc()
        return seq, resend

    async def end(self, session_id: str, by: Actor | None, reason: str) -> Session:
        now = self._clock.now()
        async with self._engine.begin() as conn:
            await self._keys.retire(conn, session_id, now)
            # Nobody can take over an ended session.
            await conn.execute(handoffs.update().where(
                handoffs.c.session_id == session_id, handoffs.c.state == "pending").values(
                state="cancelled", decided_at=now, reason="The session ended"))
            await conn.execute(sessions.update().where(sessions.c.id == session_id).values(
                queue_team_id=None))
        try:
            await self._journal.append(
                session_id, "ended", {"reason": reason}, author=by, new_state=SessionState.ENDED,
                columns={"ended_at": now, "end_reason": reason})
        except Conflict:
            pass  # already ended: ending twice is not an error
        session = await self.get(session_id)
        self._notify_technician(session)
        self._journal.forget(session_id)
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

    # -- connections coming and going ----------------------------------------------------

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
        self._notify_technician(await self.get(session_id))
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
        deadline = (await self.get(session_id)).reconnect_deadline
        if deadline is not None and self._clock.now() >= deadline:
            await self.end(session_id, None, "reconnect_timeout")
            return True
        try:
            await self._journal.append(
                session_id, "reconnected", {}, author=actor, new_state=SessionState.ACTIVE,
                columns={"reconnect_deadline": None})
        except Conflict:
            return False  # ended (or back) in the meantime
        self._notify_technician(await self.get(session_id))
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
            await self.end(session_id, None, "reconnect_timeout")
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
            self._bus.publish(technician_topic(technician_id), session)
        self._bus.publish(ALL_SESSIONS_TOPIC, session)

    def technician_actor(self, technician: Technician) -> Actor:
        return Actor(Role.TECHNICIAN, technician.id, technician.display_name)

    def _notify_technician(self, session: Session) -> None:
        self.announce(session)


def _parsed(code: str | None, token: str | None) -> dict[str, str]:
    if token is not None:
        return {"token": parse_token(token)}
    if code is not None:
        return {"code": parse_code(code)}
    raise InvalidInput("A key or a token is required.", code="key_malformed")


def _clean_name(name: str | None) -> str:
    if name is None:
        return ""
    name = " ".join(name.split())
    if len(name) > 80:
        raise InvalidInput("A name has at most 80 characters.")
    return name


def _session_query() -> sa.Select[Any]:
    return sa.select(
        sessions, technicians.c.display_name.label("technician_name"),
        support_keys.c.expires_at.label("key_expires_at"),
    ).join(technicians, technicians.c.id == sessions.c.technician_id).outerjoin(
        support_keys, support_keys.c.session_id == sessions.c.id)


# The statements of every request's path, built once: SQLAlchemy then neither builds them
# nor computes their cache keys again each time.
_SESSION_BY_ID = _session_query().where(sessions.c.id == sa.bindparam("session_id"))
_COLLABORATORS = sa.select(session_technicians).where(
    session_technicians.c.session_id.in_(sa.bindparam("ids", expanding=True)),
    session_technicians.c.left_at.is_(None)).order_by(session_technicians.c.joined_at)
_INSERT_SESSION = sessions.insert()
_INSERT_PARTICIPANT = participants.insert()
_PARTICIPANT_BY_TOKEN = sa.select(participants).where(
    participants.c.token_hash == sa.bindparam("digest"))


def _session_from_row(row: Any, collaborator_ids: tuple[int, ...] = ()) -> Session:
    return Session(row.id, row.technician_id, row.technician_name, SessionState(row.state),
                   row.created_at, row.started_at, row.ended_at, row.end_reason,
                   row.end_user_name, row.key_expires_at, row.reconnect_deadline,
                   collaborator_ids)


async def _collaborators(conn: Any, session_ids: list[str]) -> dict[str, tuple[int, ...]]:
    """Technicians present in each session besides its owner, longest present first."""
    if not session_ids:
        return {}
    rows = (await conn.execute(_COLLABORATORS, {"ids": session_ids})).all()
    found: dict[str, list[int]] = {}
    for row in rows:
        found.setdefault(row.session_id, []).append(row.technician_id)
    return {session_id: tuple(ids) for session_id, ids in found.items()}
