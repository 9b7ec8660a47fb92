"""The shared screen for a watching supervisor: the technician's page sends on the screen
it receives (or shows) over a second peer connection, and the broker relays that
connection's signaling between the supervisor's watch socket and the technician's session
socket (docs/supervision.md, "The shared screen").

Why the technician's page and not the sharing side: the end user's page and the native
agent stay as they are (one peer, one stream on the end user's uplink), and the
supervisor's connection can only ever carry video one way, from the technician's page,
which has no remote-control channel to give.

Nothing here is stored. A relay is named by an id the broker makes for each `watch.ready`
of a watch socket: `w<address>-<number>-<mac>`, where the address names the socket on
the session's topic and the mac (a keyed hash under the server secret, which every node
shares) binds it to the session, so any node can check an id without asking the others,
and an id from another session or made up is refused (`watch_unknown`). Frames travel as
`Signal`s on the session's topic: to the live share's technician, or to the watch socket's
address, which no participant of the session has, so the end user never gets one.
"""

from __future__ import annotations

import hmac
import re
import secrets

from sqlalchemy.ext.asyncio import AsyncEngine

from ..bus import EventBus
from ..clock import Clock, isoformat
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..hashing import Hasher
from ..protocol import Message
from ..protocol.rtc import ShareState
from ..protocol.supervision import (
    WatchAnswer,
    WatchCandidate,
    WatchConfig,
    WatchOffer,
    WatchPeerReady,
    WatchStop,
)
from ..ratelimit import KeyedBuckets
from ..rtc import store as share_store
from ..rtc.ice import IceConfig
from ..rtc.model import Peer, Share
from ..rtc.sdp import check_candidate, check_sdp
from ..sessions import Actor, Role, SessionService, SessionState, Signal, session_topic
from ..settings import Settings
from ..technicians import Technician
from .service import SupervisionService

WATCHER = "watch:"  # a watch socket's address on the session's topic starts so
_RELAY_ID = re.compile(r"^w([0-9a-f]{16})-(\d{1,9})-([0-9a-f]{20})$")
_REASON = re.compile(r"^[a-z_]{1,32}$")
FromWatcher = WatchAnswer | WatchCandidate | WatchStop
FromTechnician = WatchOffer | WatchCandidate | WatchStop


def new_address() -> str:
    """A watch socket's address: unguessable, so nobody else can be sent its frames."""
    return secrets.token_hex(8)


class WatchRelay:
    """The signaling of the supervisors' relays, for any node. Knows nothing of HTTP."""

    def __init__(self, settings: Settings, engine: AsyncEngine, bus: EventBus, clock: Clock,
                 hasher: Hasher, sessions: SessionService,
                 supervision: SupervisionService) -> None:
        self._settings = settings
        self._engine = engine
        self._bus = bus
        self._clock = clock
        self._hasher = hasher
        self._sessions = sessions
        self._supervision = supervision
        self._limiter = KeyedBuckets(clock, rate=settings.rtc_signal_rate_per_second,
                                     burst=settings.rtc_signal_burst)

    # -- from the supervisor's watch socket ------------------------------------------------

    async def ready(self, technician: Technician, session_id: str, address: str,
                    number: int, share_id: str) -> WatchConfig:
        """A new relay of the screen shared now: the technician's page is asked to offer
        it, the supervisor gets its id and ICE servers."""
        self._limiter.take(f"{session_id}:{WATCHER}{address}")
        await self._supervise(technician, session_id)
        share = await self._live_share(session_id)
        if share is None or share.id != share_id or share.state not in (
                ShareState.ACTIVE, ShareState.PAUSED):
            raise Conflict("No screen is being shared in this session right now.",
                           code="no_screen")
        if share.state is ShareState.PAUSED:
            raise Conflict("Screen sharing is paused.", code="share_paused")
        relay_id = self._relay_id(session_id, address, number)
        self._send(session_id, _technician_of(share).sender, WatchPeerReady(
            relay_id, share.id, {"id": technician.id, "name": technician.display_name}))
        config = IceConfig.for_user(self._settings, f"{session_id}.{WATCHER}{address}",
                                    self._clock.now())
        return WatchConfig(relay_id, share.id, [dict(server) for server in config.ice_servers],
                           config.transport_policy,
                           isoformat(config.expires_at) if config.expires_at is not None
                           else None)

    async def from_watcher(self, technician: Technician, session_id: str, address: str,
                           frame: FromWatcher) -> None:
        """The supervisor's answer, candidates or stop, to the technician's page."""
        self._limiter.take(f"{session_id}:{WATCHER}{address}")
        if self._address(session_id, frame.id) != address:
            raise NotFound("This relay is not one of this watch socket's.",
                           code="watch_unknown")
        await self._supervise(technician, session_id)
        share = await self._live_share(session_id)
        if share is None:
            if isinstance(frame, WatchStop):
                return  # nothing to stop any more
            raise Conflict("No screen is being shared in this session right now.",
                           code="no_screen")
        _check(frame)
        self._send(session_id, _technician_of(share).sender, frame)

    async def left(self, session_id: str, relay_ids: list[str]) -> None:
        """The watch socket closed: the technician's page closes its relays to it (with no
        live share left, it closed them already)."""
        share = await self._live_share(session_id)
        if share is not None:
            for relay_id in relay_ids:
                self._send(session_id, _technician_of(share).sender,
                           WatchStop(relay_id, "left"))

    # -- from the technician's session socket ---------------------------------------------

    async def from_technician(self, session_id: str, actor: Actor,
                              frame: FromTechnician) -> None:
        """The technician's offer, candidates or stop, to the watch socket it names."""
        if actor.role is not Role.TECHNICIAN:
            raise Forbidden("Only the technician's page sends the screen to a supervisor.",
                            code="technician_only")
        self._limiter.take(f"{session_id}:{actor.sender}")
        address = self._address(session_id, frame.id)
        if not isinstance(frame, WatchStop):  # a stop ends a relay, whoever has the share
            share = await self._live_share(session_id)
            if share is None:
                raise Conflict("No screen is being shared in this session right now.",
                               code="no_screen")
            if _technician_of(share).sender != actor.sender:
                raise Forbidden("Only the technician who sees or shows the screen relays it.",
                                code="not_share_peer")
        _check(frame)
        self._send(session_id, WATCHER + address, frame)

    # -- inside ---------------------------------------------------------------------------

    def _relay_id(self, session_id: str, address: str, number: int) -> str:
        return f"w{address}-{number}-{self._mac(session_id, address, number)}"

    def _mac(self, session_id: str, address: str, number: int) -> str:
        return self._hasher.hash("watch-relay", f"{session_id}\x00{address}\x00{number}")[:20]

    def _address(self, session_id: str, relay_id: str) -> str:
        """The watch socket a relay id of this session names; watch_unknown for others."""
        found = _RELAY_ID.match(relay_id)
        if found is None or not hmac.compare_digest(
                found[3], self._mac(session_id, found[1], int(found[2]))):
            raise NotFound("No such relay of a watching supervisor in this session.",
                           code="watch_unknown")
        return found[1]

    async def _supervise(self, technician: Technician, session_id: str) -> None:
        """Asked again for every frame: a lead whose role ended, or a session handed to
        someone outside their teams, gets no more of the screen."""
        session = await self._sessions.get(session_id)
        await self._supervision.require_session(technician, session)
        if session.state is SessionState.ENDED:
            raise Conflict("This session has ended.", code="session_ended")

    async def _live_share(self, session_id: str) -> Share | None:
        async with self._engine.connect() as conn:
            found = await share_store.live(conn, session_id)
        return found[0].share if found else None

    def _send(self, session_id: str, to: str, frame: Message) -> None:
        self._bus.publish(session_topic(session_id), Signal(session_id, frame, to=to))


def _technician_of(share: Share) -> Peer:
    """The share's technician: the viewer of an end user's screen, the sharer of their
    own."""
    return share.viewer if share.viewer.role == Role.TECHNICIAN.value else share.sharer


def _check(frame: Message) -> None:
    if isinstance(frame, WatchOffer | WatchAnswer):
        check_sdp(frame.sdp)
        if any(line.startswith("m=") and not line.startswith("m=video ")
               for line in frame.sdp.splitlines()):
            # The relay carries the picture only: no data channel, so no remote control.
            raise InvalidInput("The session description is not valid: a supervisor's relay "
                               "carries video only.", code="bad_sdp")
    elif isinstance(frame, WatchCandidate):
        check_candidate(frame.candidate, frame.sdp_mid, frame.sdp_mline_index)
    elif isinstance(frame, WatchStop) and not _REASON.match(frame.reason):
        raise InvalidInput("A reason has 1 to 32 letters a-z or '_'.", code="bad_message")
