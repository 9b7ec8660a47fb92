"""The end user's native agent (agent/): how it gets into a session, and how both sides
learn that it is there.

The agent is an end-user participant of its own, recorded as an agent (the table
`agent_participants`). It either redeems the support key like a browser (the end user has
no chat page open), or an **agent link** that the end user's chat page asks for: a sealed,
short-lived token naming the session and the participant whose page made it. Redeeming the
link adds a participant for the agent with the same name, and gives the agent its own
participant token, which it keeps to resume after a reboot. The link is sealed with
AES-256-GCM, so it can be neither forged nor read, and it stops working after
`agent_link_seconds`. Like a support key it is used up by its redemption: its keyed hash
is stored with the agent it admitted, and a second redemption gets `key_used`, unless that
agent is gone for good (`_gone_for_good`); then the link passes to the new agent.

On its socket the agent says `agent.hello`, which only an agent's participant may (not
the end user's browser); that is stored as `agent.connected`, and the socket's close as
`agent.disconnected`, so both pages (also after a reload) know whether view and control
through the agent are possible. Screen shares whose `source` is `agent` go to the
participant of the session's latest `agent.connected` event, which every node reads from
the journal (see ShareService).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..clock import Clock
from ..errors import KEY_EXPIRED, KEY_UNKNOWN, KEY_USED, Conflict, Forbidden, KeyRejected
from ..hashing import Hasher, Sealer
from ..schema import agent_participants, events
from ..sessions import Actor, Journal, Role, SessionService, SessionState
from ..settings import Settings

_CONTEXT = "agent-link"
# An agent admitted by a link that has not said agent.hello this long after is taken to
# have failed on the way (it normally says it within a second): its link admits another.
NEVER_CONNECTED_SECONDS = 60.0


@dataclasses.dataclass(frozen=True, slots=True)
class AgentLink:
    """A link the end user's page shows for starting the agent; `token` is its last part."""

    token: str
    session_id: str
    expires_at: float


@dataclasses.dataclass(frozen=True, slots=True)
class AgentAdmission:
    """What a redeemed agent link gives the agent: its session and its own credential."""

    session_id: str
    participant_token: str
    actor: Actor


class AgentService:
    """Agent links, agent participants and their presence. Knows nothing of HTTP."""

    def __init__(self, settings: Settings, engine: AsyncEngine, journal: Journal,
                 sessions: SessionService, hasher: Hasher, sealer: Sealer,
                 clock: Clock) -> None:
        self._settings = settings
        self._engine = engine
        self._journal = journal
        self._sessions = sessions
        self._hasher = hasher
        self._sealer = sealer
        self._clock = clock

    async def issue_link(self, session_id: str, actor: Actor) -> AgentLink:
        """A link for the agent of the end user `actor` (their chat page asks for it)."""
        if actor.role is not Role.END_USER:
            raise Forbidden("Only the end user starts the agent on their computer.",
                            code="end_user_only")
        await self._check_running(session_id)
        expires_at = self._clock.now() + self._settings.agent_link_seconds
        sealed = self._sealer.seal(json.dumps([session_id, actor.id, expires_at]), _CONTEXT)
        raw = base64.b64decode(sealed)
        token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return AgentLink(token, session_id, expires_at)

    async def redeem_link(self, token: str) -> AgentAdmission:
        """Admit an agent with a link: a new participant with the end user's name. A link
        admits one agent, unless that one is gone for good."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            session_id, participant_id, expires_at = json.loads(
                self._sealer.open(base64.b64encode(raw).decode(), _CONTEXT))
        except (InvalidTag, ValueError, TypeError, binascii.Error) as exc:
            raise KeyRejected("This agent link is not valid.", code=KEY_UNKNOWN) from exc
        if self._clock.now() >= float(expires_at):
            raise KeyRejected("This agent link has expired; show the command in the chat "
                              "again.", code=KEY_EXPIRED)
        await self._check_running(str(session_id))
        claim = await self._claim(str(session_id), self._hasher.hash("agent-link", token))
        admitted = await self._sessions.admit_like(str(session_id), int(participant_id))
        if admitted is None:
            raise KeyRejected("This agent link is not valid.", code=KEY_UNKNOWN)
        participant_token, actor = admitted
        async with self._engine.begin() as conn:
            await conn.execute(agent_participants.update().where(
                agent_participants.c.id == claim).values(participant_id=actor.id))
        return AgentAdmission(str(session_id), participant_token, actor)

    async def _claim(self, session_id: str, link_hash: str) -> int:
        """The link's row, held for the agent being admitted: new, or taken from the agent
        it admitted before if that one is gone for good (it is no agent any more then).
        `key_used` otherwise, and for the loser of two redemptions at the same moment (the
        unique link hash, or the conditional update, decides)."""
        now = self._clock.now()
        try:
            async with self._engine.begin() as conn:
                held = (await conn.execute(sa.select(agent_participants).where(
                    agent_participants.c.link_hash == link_hash))).first()
                if held is None:
                    made = await conn.execute(agent_participants.insert().values(
                        session_id=session_id, link_hash=link_hash, admitted_at=now))
                    (made_id,) = made.inserted_primary_key or (0,)
                    return int(made_id)
                if not await self._gone_for_good(conn, session_id, held.participant_id,
                                                 held.admitted_at):
                    raise _used()
                taken = await conn.execute(agent_participants.update().where(
                    agent_participants.c.id == held.id,
                    agent_participants.c.admitted_at == held.admitted_at).values(
                    participant_id=None, admitted_at=now))
                if taken.rowcount != 1:
                    raise _used()
                return int(held.id)
        except sa.exc.IntegrityError as exc:
            raise _used() from exc

    async def _gone_for_good(self, conn: AsyncConnection, session_id: str,
                             participant_id: int | None, admitted_at: float) -> bool:
        """An agent that did not say agent.hello within NEVER_CONNECTED_SECONDS of its
        admission, or whose last word was agent.disconnected longer than the reconnect
        window ago. One whose last word was agent.connected counts as there (also if its
        node stopped without storing the disconnect: the link then stays used)."""
        now = self._clock.now()
        last = None if participant_id is None else (await conn.execute(
            sa.select(events.c.type, events.c.created_at).where(
                events.c.session_id == session_id, events.c.sender == f"p{participant_id}",
                events.c.type.in_(("agent.connected", "agent.disconnected")))
            .order_by(events.c.seq.desc()).limit(1))).first()
        if last is None:
            return now - admitted_at > NEVER_CONNECTED_SECONDS
        return (last.type == "agent.disconnected"
                and now - float(last.created_at) > self._settings.reconnect_window_seconds)

    async def admit_with_key(self, session_id: str, actor: Actor) -> None:
        """The participant `actor` redeemed the support key (or join link) for the agent:
        it is the agent, and may say agent.hello."""
        async with self._engine.begin() as conn:
            await conn.execute(agent_participants.insert().values(
                session_id=session_id, participant_id=actor.id,
                admitted_at=self._clock.now()))

    async def hello(self, session_id: str, actor: Actor, version: str, platform: str) -> None:
        """The agent is on its socket: both sides are told, and agent shares go to it (the
        stored `agent.connected` event says so to every node). Only an agent's own
        participant may say so, not the end user's browser."""
        if actor.role is not Role.END_USER:
            raise Forbidden("Only the end user's agent says agent.hello.", code="end_user_only")
        async with self._engine.connect() as conn:
            agent = await conn.scalar(sa.select(agent_participants.c.id).where(
                agent_participants.c.session_id == session_id,
                agent_participants.c.participant_id == actor.id))
        if agent is None:
            raise Forbidden("Only the support agent says agent.hello; this participant "
                            "joined in a browser.", code="not_agent")
        await self._journal.append(session_id, "agent.connected",
                                   {"version": version, "platform": platform}, author=actor)

    async def gone(self, session_id: str, actor: Actor) -> None:
        """The agent's socket closed (it may come back: a reboot, a network change)."""
        try:
            await self._journal.append(session_id, "agent.disconnected", {}, author=actor)
        except Conflict:
            pass  # the session ended meanwhile: nothing to tell

    async def _check_running(self, session_id: str) -> None:
        state = await self._journal.state(session_id)
        if state is SessionState.ENDED:
            raise Conflict("This session has ended.", code="session_ended")
        if state is SessionState.WAITING:
            raise Conflict("The session has not started.", code="session_waiting")


def _used() -> KeyRejected:
    return KeyRejected("This agent link was used already. Show the command in the chat again "
                       "for a new one.", code=KEY_USED)
