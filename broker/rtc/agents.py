"""The end user's native agent (agent/): how it gets into a session, and how both sides
learn that it is there.

The agent is an end-user participant of its own. It either redeems the support key like a
browser (the end user has no chat page open), or an **agent link** that the end user's chat
page asks for: a sealed, short-lived token naming the session and the participant whose page
made it. Redeeming the link adds a participant for the agent with the same name, and gives
the agent its own participant token, which it keeps to resume after a reboot. The link is
sealed with AES-256-GCM, so it can be neither forged nor read, and it stops working after
`agent_link_seconds`; nothing is stored until it is redeemed.

On its socket the agent says `agent.hello`; that is stored as `agent.connected`, and the
socket's close as `agent.disconnected`, so both pages (also after a reload) know whether
view and control through the agent are possible. Screen shares whose `source` is `agent`
go to the participant of the session's latest `agent.connected` event, which every node
reads from the journal (see ShareService).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import secrets

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from sqlalchemy.ext.asyncio import AsyncEngine

from ..clock import Clock
from ..db import participants
from ..errors import KEY_EXPIRED, KEY_UNKNOWN, Conflict, Forbidden, KeyRejected
from ..hashing import Hasher, Sealer
from ..sessions import Actor, Journal, Role, SessionState
from ..settings import Settings

_CONTEXT = "agent-link"


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
                 hasher: Hasher, sealer: Sealer, clock: Clock) -> None:
        self._settings = settings
        self._engine = engine
        self._journal = journal
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
        """Admit an agent with a link: a new participant with the end user's name."""
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
        now = self._clock.now()
        participant_token = "sbp_" + secrets.token_urlsafe(32)
        async with self._engine.begin() as conn:
            name = await conn.scalar(sa.select(participants.c.display_name).where(
                participants.c.id == int(participant_id),
                participants.c.session_id == session_id))
            if name is None:
                raise KeyRejected("This agent link is not valid.", code=KEY_UNKNOWN)
            result = await conn.execute(participants.insert().values(
                session_id=session_id, role=Role.END_USER.value,
                token_hash=self._hasher.hash("participant", participant_token),
                display_name=name, created_at=now))
            (new_id,) = result.inserted_primary_key or (0,)
        return AgentAdmission(str(session_id), participant_token,
                              Actor(Role.END_USER, int(new_id), str(name)))

    async def hello(self, session_id: str, actor: Actor, version: str, platform: str) -> None:
        """The agent is on its socket: both sides are told, and agent shares go to it (the
        stored `agent.connected` event says so to every node)."""
        if actor.role is not Role.END_USER:
            raise Forbidden("Only the end user's agent says agent.hello.", code="end_user_only")
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
