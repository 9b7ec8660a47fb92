"""The shares of running sessions: who may change them, who may signal to whom, and the
signaling held for a peer who is not ready.

Each change of a share is stored as a session event (through the journal, so it has a
sequence number and reaches both pages, also after a reconnect). Signaling is not stored:
it is published on the session's topic as a `Signal` for the other peer, or, while that
peer has no ready socket, held in a bounded queue until it says `rtc.ready`.

Shares live in this node's memory: a broker restart ends them (their peers see the
session socket drop and the media stop, and the technician can ask again).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import re
from collections.abc import Callable
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..bus import EventBus
from ..clock import Clock, isoformat
from ..db import participants
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..protocol import Message
from ..protocol.rtc import (
    RtcAnswer,
    RtcCandidate,
    RtcConfig,
    RtcOffer,
    RtcPeerReady,
    RtcRestart,
)
from ..ratelimit import KeyedBuckets
from ..sessions import Actor, Event, Journal, Role, SessionState, Signal, session_topic
from ..settings import Settings
from .ice import IceConfig
from .model import SHARE_ID, ControlState, Direction, Peer, Share, ShareState, Source
from .sdp import check_candidate, check_sdp

SignalFrame = RtcOffer | RtcAnswer | RtcCandidate | RtcRestart
_REASON = re.compile(r"^[a-z_]{1,32}$")
_KEEP_ENDED = 20  # ended shares remembered per session, to answer share_ended


class Presence(Protocol):
    """A participant's socket as the share service sees it: is it still there?"""

    def alive(self) -> bool: ...


@dataclasses.dataclass(slots=True)
class _Line:
    """One peer of one share: where its signaling goes, and what waits for it."""

    presence: Presence | None = None
    readied: bool = False  # it had a peer connection before
    queue: collections.deque[Message] = dataclasses.field(default_factory=collections.deque)

    def attached(self) -> bool:
        if self.presence is not None and not self.presence.alive():
            self.presence = None
        return self.presence is not None


@dataclasses.dataclass(slots=True)
class _Entry:
    share: Share
    lines: dict[str, _Line]


class ShareService:
    """Screen shares of the sessions this node serves. Knows nothing of HTTP."""

    def __init__(self, settings: Settings, engine: AsyncEngine, journal: Journal,
                 bus: EventBus, clock: Clock) -> None:
        self._settings = settings
        self._engine = engine
        self._journal = journal
        self._bus = bus
        self._clock = clock
        self._limiter = KeyedBuckets(clock, rate=settings.rtc_signal_rate_per_second,
                                     burst=settings.rtc_signal_burst)
        self._sessions: dict[str, dict[str, _Entry]] = {}
        # Session id -> the participant that is the end user's native agent (it said
        # agent.hello); kept while it reconnects, so a share can wait for it.
        self._agents: dict[str, Peer] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._unsubscribe: dict[str, Callable[[], None]] = {}

    # -- the share's life (stored events) -----------------------------------------------

    async def request(self, session_id: str, actor: Actor, share_id: str,
                      direction: str = Direction.END_USER_TO_TECHNICIAN.value,
                      source: str = Source.BROWSER.value) -> Share:
        """A technician asks to see the end user's screen, or starts showing their own."""
        if actor.role is not Role.TECHNICIAN:
            raise Forbidden("Only the technician starts screen sharing.",
                            code="technician_only")
        try:
            way, kind = Direction(direction), Source(source)
        except ValueError as exc:
            raise InvalidInput("direction must be end_user_to_technician or "
                               "technician_to_end_user, source browser or agent") from exc
        if not SHARE_ID.match(share_id):
            raise InvalidInput("A share id has 1 to 64 letters, digits, '-' or '_'.")
        if kind is Source.AGENT and way is not Direction.END_USER_TO_TECHNICIAN:
            raise InvalidInput("The agent only shares the end user's screen.")
        async with self._lock(session_id):
            state = await self._journal.state(session_id)
            if state is SessionState.ENDED:
                raise Conflict("This session has ended.", code="session_ended")
            end_user = await self._end_user(session_id)
            if state is SessionState.WAITING or end_user is None:
                raise Conflict("Nobody has joined the session yet.", code="session_waiting")
            shares = self._sessions.setdefault(session_id, {})
            self._follow(session_id)
            if share_id in shares:
                raise Conflict("A share with this id exists already.", code="share_exists")
            if any(entry.share.state.live for entry in shares.values()):
                raise Conflict("A screen is already being shared in this session; stop it "
                               "first.", code="share_busy")
            technician = Peer(actor.sender, actor.role.value, actor.name)
            if kind is Source.AGENT:
                agent = self._agents.get(session_id)
                if agent is None:
                    raise Conflict("The end user's support agent has not joined this "
                                   "session.", code="no_agent")
                end_user = agent
            elif end_user.sender == getattr(self._agents.get(session_id), "sender", None):
                # The browser shares: its participant, not the agent's (unless the agent
                # is the only end-user participant, which then shares itself).
                end_user = await self._end_user(session_id, besides=end_user.sender) or end_user
            if way is Direction.END_USER_TO_TECHNICIAN:
                share = Share(session_id, share_id, way, kind, end_user, technician)
            else:
                share = Share(session_id, share_id, way, kind, technician, end_user)
            shares[share_id] = _Entry(share, {share.sharer.sender: _Line(),
                                              share.viewer.sender: _Line()})
            if way is Direction.END_USER_TO_TECHNICIAN:
                try:
                    await self._record(share, "share.requested", actor)
                except BaseException:
                    del shares[share_id]
                    raise
            return share

    async def consent(self, session_id: str, actor: Actor, share_id: str,
                      accept: bool) -> Share:
        """The sharing side accepts or refuses a request."""
        async with self._lock(session_id):
            share = self._peer_of(session_id, share_id, actor).share
            if actor.sender != share.sharer.sender:
                raise Forbidden("Only the one whose screen it is answers a request.",
                                code="wrong_peer")
            if accept:
                await self._change(share, ShareState.CONSENTED, "share.consented", actor)
            else:
                await self._change(share, ShareState.REFUSED, "share.refused", actor)
            return share

    async def start(self, session_id: str, actor: Actor, share_id: str) -> Share:
        """The sharing side has captured its screen."""
        async with self._lock(session_id):
            share = self._peer_of(session_id, share_id, actor).share
            if actor.sender != share.sharer.sender:
                raise Forbidden("Only the sharing side starts the share.", code="wrong_peer")
            await self._change(share, ShareState.ACTIVE, "share.started", actor)
            return share

    async def pause(self, session_id: str, actor: Actor, share_id: str) -> Share:
        async with self._lock(session_id):
            share = self._peer_of(session_id, share_id, actor).share
            await self._change(share, ShareState.PAUSED, "share.paused", actor)
            return share

    async def resume(self, session_id: str, actor: Actor, share_id: str) -> Share:
        """The sharing side resumes any pause; the viewer only its own."""
        async with self._lock(session_id):
            share = self._peer_of(session_id, share_id, actor).share
            if (share.state is ShareState.PAUSED and actor.sender != share.sharer.sender
                    and actor.sender != share.paused_by):
                raise Forbidden("The sharing side paused; only they can resume.",
                                code="wrong_peer")
            await self._change(share, ShareState.ACTIVE, "share.resumed", actor)
            return share

    async def stop(self, session_id: str, actor: Actor, share_id: str,
                   reason: str = "stopped") -> Share:
        """Either peer ends the share, in any live state."""
        async with self._lock(session_id):
            share = self._peer_of(session_id, share_id, actor).share
            reason = reason if _REASON.match(reason) else "stopped"
            await self._change(share, ShareState.STOPPED, "share.stopped", actor,
                               {"reason": reason})
            return share

    async def stop_all(self, session_id: str, by: Actor, reason: str) -> None:
        """End every live share of the session, e.g. when it is handed to another
        technician: consent to see or control a screen does not pass to the new owner."""
        async with self._lock(session_id):
            for entry in list(self._sessions.get(session_id, {}).values()):
                if entry.share.state.live:
                    await self._change(entry.share, ShareState.STOPPED, "share.stopped", by,
                                       {"reason": reason})

    # -- remote control of an agent share (stored events) --------------------------------

    async def request_control(self, session_id: str, actor: Actor, share_id: str) -> Share:
        """The viewer of an agent share asks to control the shared computer."""
        async with self._lock(session_id):
            share = self._peer_of(session_id, share_id, actor).share
            if actor.sender != share.viewer.sender:
                raise Forbidden("Only the viewer asks for control.", code="wrong_peer")
            self._check_controllable(share)
            share.set_control(ControlState.REQUESTED)
            await self._record(share, "control.requested", actor)
            return share

    async def answer_control(self, session_id: str, actor: Actor, share_id: str,
                             accept: bool) -> Share:
        """The person at the shared computer (through the agent) grants or refuses."""
        async with self._lock(session_id):
            share = self._peer_of(session_id, share_id, actor).share
            if actor.sender != share.sharer.sender:
                raise Forbidden("Only the one whose computer it is grants control.",
                                code="wrong_peer")
            self._check_controllable(share)
            if accept:
                share.set_control(ControlState.GRANTED)
                await self._record(share, "control.granted", actor)
            else:
                share.set_control(ControlState.NONE)
                await self._record(share, "control.refused", actor)
            return share

    async def stop_control(self, session_id: str, actor: Actor, share_id: str,
                           reason: str = "stopped") -> Share:
        """Either peer ends control, or withdraws a request for it."""
        async with self._lock(session_id):
            share = self._peer_of(session_id, share_id, actor).share
            if not share.state.live:
                raise Conflict("This share has ended.", code="share_ended")
            share.set_control(ControlState.NONE)
            await self._record(share, "control.stopped", actor,
                               {"reason": reason if _REASON.match(reason) else "stopped"})
            return share

    def _check_controllable(self, share: Share) -> None:
        if not share.state.live:
            raise Conflict("This share has ended.", code="share_ended")
        if share.source is not Source.AGENT:
            raise Conflict("Remote control needs the support agent on the end user's "
                           "computer.", code="control_unavailable")
        if share.state is ShareState.REQUESTED:
            raise Conflict("The screen's owner has not agreed to share it yet.",
                           code="share_not_consented")

    # -- the end user's agent -----------------------------------------------------------

    def agent_joined(self, session_id: str, agent: Peer) -> None:
        """The end user's native agent said hello on its socket: agent shares go to it."""
        self._agents[session_id] = agent
        self._follow(session_id)

    # -- signaling (not stored) ----------------------------------------------------------

    async def ready(self, session_id: str, actor: Actor, share_id: str, fresh: bool,
                    presence: Presence) -> list[Message]:
        """Attach a peer's socket to the share. Returns what to send it now: its ICE
        configuration, then whatever waited for it, in order."""
        entry = self._peer_of(session_id, share_id, actor)
        share = entry.share
        self._check_signaling(share)
        line = entry.lines[actor.sender]
        config = IceConfig.for_user(self._settings, f"{session_id}.{actor.sender}",
                                    self._clock.now())
        frames: list[Message] = [RtcConfig(
            share.id, [dict(server) for server in config.ice_servers], config.transport_policy,
            isoformat(config.expires_at) if config.expires_at is not None else None)]
        tell_sharer = False
        if fresh:
            if line.readied:
                # A new peer connection: what waited was for the one before.
                line.queue.clear()
            if actor.sender == share.viewer.sender:
                # The sharing side offers to this new connection, unless an offer waits.
                tell_sharer = not any(isinstance(f, RtcOffer) for f in line.queue)
            line.readied = True
        line.presence = presence
        frames.extend(line.queue)
        line.queue.clear()
        if tell_sharer:
            sharer = entry.lines[share.sharer.sender]
            if not sharer.attached():
                # Only the newest viewer connection counts: drop what its earlier one sent.
                sharer.queue = collections.deque(
                    f for f in sharer.queue if not isinstance(f, RtcAnswer | RtcCandidate
                                                              | RtcRestart | RtcPeerReady))
            self._deliver(entry, share.sharer.sender, RtcPeerReady(share.id))
        return frames

    async def relay(self, session_id: str, actor: Actor, frame: SignalFrame) -> None:
        """Pass one signaling frame to the other peer of its share, after checking it."""
        self._limiter.take(f"{session_id}:{actor.sender}")
        entry = self._peer_of(session_id, frame.id, actor)
        share = entry.share
        self._check_signaling(share)
        sharer = actor.sender == share.sharer.sender
        if isinstance(frame, RtcOffer):
            if not sharer:
                raise Forbidden("Only the sharing side makes offers.", code="wrong_peer")
            check_sdp(frame.sdp)
        elif isinstance(frame, RtcAnswer):
            if sharer:
                raise Forbidden("Only the viewing side answers.", code="wrong_peer")
            check_sdp(frame.sdp)
        elif isinstance(frame, RtcRestart):
            if sharer:
                raise Forbidden("The sharing side restarts by sending an offer.",
                                code="wrong_peer")
        else:
            check_candidate(frame.candidate, frame.sdp_mid, frame.sdp_mline_index)
        self._deliver(entry, share.other(actor.sender).sender, frame)

    # -- inside ---------------------------------------------------------------------------

    def _deliver(self, entry: _Entry, to: str, frame: Message) -> None:
        line = entry.lines[to]
        if line.attached():
            self._bus.publish(session_topic(entry.share.session_id),
                              Signal(entry.share.session_id, frame, to=to))
            return
        if len(line.queue) >= self._settings.rtc_queue_limit:
            raise Conflict("The other side is not ready and too much waits for it already.",
                           code="peer_backlog")
        line.queue.append(frame)

    def _check_signaling(self, share: Share) -> None:
        if share.state is ShareState.REQUESTED:
            raise Conflict("The screen's owner has not agreed to share it yet.",
                           code="share_not_consented")
        if not share.state.signaling:
            raise Conflict("This share has ended.", code="share_ended")

    def _peer_of(self, session_id: str, share_id: str, actor: Actor) -> _Entry:
        entry = self._sessions.get(session_id, {}).get(share_id)
        if entry is None:
            raise NotFound("No such share in this session.", code="share_unknown")
        if entry.share.peer(actor.sender) is None:
            raise Forbidden("You are not one of the two sides of this share.",
                            code="not_share_peer")
        return entry

    async def _change(self, share: Share, new: ShareState, event_type: str, actor: Actor,
                      extra: dict[str, Any] | None = None) -> None:
        if not share.state.live:
            raise Conflict("This share has ended.", code="share_ended")
        if not new.live and share.control is not ControlState.NONE:
            # Control ends with the share; said explicitly, for the pages and the transcript.
            share.set_control(ControlState.NONE)
            await self._record(share, "control.stopped", actor, {"reason": "share_stopped"})
        share.set_state(new, by=actor.sender)
        if not new.live:
            self._retire(share)
        await self._record(share, event_type, actor, extra)

    async def _record(self, share: Share, event_type: str, actor: Actor,
                      extra: dict[str, Any] | None = None) -> None:
        await self._journal.append(share.session_id, event_type,
                                   {**share.public(), **(extra or {})}, author=actor)

    def _retire(self, share: Share) -> None:
        """An ended share keeps no queues; the oldest ended ones are forgotten."""
        shares = self._sessions.get(share.session_id, {})
        entry = shares.get(share.id)
        if entry is not None:
            entry.lines.clear()
        ended = [sid for sid, e in shares.items() if not e.share.state.live]
        for old in ended[:-_KEEP_ENDED]:
            del shares[old]

    def _follow(self, session_id: str) -> None:
        """Forget a session's shares when it ends."""
        if session_id in self._unsubscribe:
            return

        def on_event(event: Event | Signal) -> None:
            if isinstance(event, Event) and event.type == "ended":
                self._forget(session_id)

        self._unsubscribe[session_id] = self._bus.subscribe(session_topic(session_id),
                                                            on_event)

    def _forget(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        self._agents.pop(session_id, None)
        lock = self._locks.get(session_id)
        if lock is not None and not lock.locked():
            del self._locks[session_id]
        unsubscribe = self._unsubscribe.pop(session_id, None)
        if unsubscribe is not None:
            unsubscribe()

    def close(self) -> None:
        for session_id in list(self._unsubscribe):
            self._forget(session_id)

    def _lock(self, session_id: str) -> asyncio.Lock:
        return self._locks.setdefault(session_id, asyncio.Lock())

    async def _end_user(self, session_id: str, besides: str | None = None) -> Peer | None:
        """The session's newest end-user participant (other than `besides`)."""
        query = (sa.select(participants.c.id, participants.c.display_name)
                 .where(participants.c.session_id == session_id,
                        participants.c.role == Role.END_USER.value)
                 .order_by(participants.c.id.desc()).limit(1))
        if besides is not None and besides.startswith("p") and besides[1:].isdigit():
            query = query.where(participants.c.id != int(besides[1:]))
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        actor = Actor(Role.END_USER, row.id, row.display_name)
        return Peer(actor.sender, actor.role.value, actor.name)
