"""The signaling of screen shares: who may signal to whom, and the frames held for a peer
who is not ready.

Signaling is not stored: it is published on the session's topic as a `Signal` for the
other peer, which reaches that peer's socket on whatever node it is. While that peer has
no ready socket it is held in `share_signals` (bounded) until it says `rtc.ready`, at any
node. Each peer's ready socket is a token in the share's row naming the node process that
has it; that node clears it when the socket closes. Relaying and readiness lock the
share's row, so a frame is either delivered or held, never lost between the two, and a
peer gets what was held for it before anything newer.

The share's changes (request, consent, start, ...) are the share service's
(broker/rtc/service.py); signaling happens only in a share whose sharing side consented.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..bus import EventBus
from ..clock import Clock, isoformat
from ..errors import Conflict, Forbidden
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
from ..sessions import Actor, Signal, session_topic
from ..settings import Settings
from . import store
from .ice import IceConfig
from .model import ShareState
from .sdp import check_candidate, check_sdp
from .store import Stored, peer_of

log = logging.getLogger(__name__)
SignalFrame = RtcOffer | RtcAnswer | RtcCandidate | RtcRestart
# What a viewer's earlier peer connection sent, dropped when it has a new one.
_FROM_EARLIER_VIEWER = (RtcAnswer, RtcCandidate, RtcRestart, RtcPeerReady)


class SignalingPeer(Protocol):
    """A participant's socket attached to a share's signaling, as the signaling sees it:
    is it still there, and give it a frame. Equal ones are the same socket."""

    def alive(self) -> bool: ...

    def send(self, frame: Message) -> None: ...


class ShareSignaling:
    """Signaling between the two peers of the sessions' shares, for any node. Knows
    nothing of HTTP."""

    def __init__(self, settings: Settings, engine: AsyncEngine, bus: EventBus,
                 clock: Clock) -> None:
        self._settings = settings
        self._engine = engine
        self._bus = bus
        self._clock = clock
        self._limiter = KeyedBuckets(clock, rate=settings.rtc_signal_rate_per_second,
                                     burst=settings.rtc_signal_burst)
        # The ready sockets of this process, by the token that names them in the database.
        self._prefix = f"{secrets.token_hex(8)}."
        self._numbers = itertools.count(1)
        self._here: dict[str, SignalingPeer] = {}

    async def ready(self, session_id: str, actor: Actor, share_id: str, fresh: bool,
                    socket: SignalingPeer) -> None:
        """Attach a peer's socket to the share, and send it its ICE configuration, then
        whatever waited for it, in order."""
        token = self._token(socket)
        config = IceConfig.for_user(self._settings, f"{session_id}.{actor.sender}",
                                    self._clock.now())
        frames: list[Message] = [RtcConfig(
            share_id, [dict(server) for server in config.ice_servers],
            config.transport_policy,
            isoformat(config.expires_at) if config.expires_at is not None else None)]
        async with self._engine.begin() as conn:
            stored = await self._signaling(conn, session_id, share_id, actor)
            share, me = stored.share, actor.sender
            tell_sharer = False
            if fresh:
                if stored.readied[me]:
                    # A new peer connection: what waited was for the one before.
                    await store.drop_held(conn, share, me)
                if me == share.viewer.sender:
                    # The sharing side offers to this new connection, unless an offer waits.
                    tell_sharer = not await store.holds(conn, share, me, RtcOffer.TYPE)
                stored.set_readied(me)
            stored.set_conn(me, token)
            frames.extend(await store.take_held(conn, share, me))
            if tell_sharer:
                sharer = share.sharer.sender
                if not self._attached(stored, sharer):
                    # Only the newest viewer connection counts: drop what its earlier one
                    # sent.
                    await store.drop_held(conn, share, sharer, _FROM_EARLIER_VIEWER)
                await self._deliver(conn, stored, sharer, RtcPeerReady(share.id))
            await store.save_lines(conn, stored)
            # Sent with the row still locked: nothing newer reaches this peer before.
            for frame in frames:
                socket.send(frame)

    async def relay(self, session_id: str, actor: Actor, frame: SignalFrame) -> None:
        """Pass one signaling frame to the other peer of its share, after checking it."""
        self._limiter.take(f"{session_id}:{actor.sender}")
        async with self._engine.begin() as conn:
            stored = await self._signaling(conn, session_id, frame.id, actor)
            share = stored.share
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
            await self._deliver(conn, stored, share.other(actor.sender).sender, frame)
            await store.save_lines(conn, stored)

    async def detach(self, socket: SignalingPeer) -> None:
        """The socket closed: what comes for it is held again (its node says so for all)."""
        gone = [token for token, here in self._here.items()
                if here == socket or not here.alive()]
        for token in gone:
            del self._here[token]
        if gone:
            async with self._engine.begin() as conn:
                await store.clear_conns(conn, gone)

    async def close(self) -> None:
        """This process stops: its sockets are ready for nothing any more."""
        if not self._here:
            return
        self._here.clear()
        try:
            async with self._engine.begin() as conn:
                await store.clear_conns_of(conn, self._prefix)
        except Exception:  # as if killed: the peers' next rtc.ready replaces the marks
            log.exception("could not clear this node's ready sockets")


    # -- inside ---------------------------------------------------------------------------

    def _token(self, socket: SignalingPeer) -> str:
        for token, here in self._here.items():
            if here == socket:
                return token
        token = f"{self._prefix}{next(self._numbers)}"
        self._here[token] = socket
        return token

    def _attached(self, stored: Stored, sender: str) -> bool:
        """Whether the peer has a ready socket (on any node); forgets one that is gone."""
        token = stored.conns[sender]
        if token is None:
            return False
        if token.startswith(self._prefix):
            socket = self._here.get(token)
            if socket is not None and socket.alive():
                return True
            self._here.pop(token, None)
        elif self._settings.several_nodes:
            return True  # at another node, which clears it when that socket closes
        # else: a socket of this broker before it restarted
        stored.set_conn(sender, None)
        return False

    async def _deliver(self, conn: AsyncConnection, stored: Stored, to: str,
                       frame: Message) -> None:
        share = stored.share
        if self._attached(stored, to):
            self._bus.publish(session_topic(share.session_id),
                              Signal(share.session_id, frame, to=to))
            return
        if await store.held_count(conn, share, to) >= self._settings.rtc_queue_limit:
            raise Conflict("The other side is not ready and too much waits for it already.",
                           code="peer_backlog")
        await store.hold(conn, share, to, frame, self._clock.now())

    async def _signaling(self, conn: AsyncConnection, session_id: str, share_id: str,
                         actor: Actor) -> Stored:
        """The share, its row locked, if the actor may signal in it now."""
        stored = peer_of(await store.load(conn, session_id, share_id, lock=True), actor)
        share = stored.share
        if share.state is ShareState.REQUESTED:
            raise Conflict("The screen's owner has not agreed to share it yet.",
                           code="share_not_consented")
        if not share.state.signaling or stored.session_ended:
            raise Conflict("This share has ended.", code="share_ended")
        return stored
