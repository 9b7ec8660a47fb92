"""The WebSockets: one per session participant, and one per technician dashboard.

A socket starts with an auth phase (the client's ``hello``), then replays what the client
missed by sequence number, then goes live. Each socket has one writer task and a bounded
queue; a client that falls too far behind is disconnected (close code 4008) and resumes
from its last sequence number, so nothing is ever skipped silently.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web

from broker import protocol
from broker.core import Broker
from broker.delivery import Delivery
from broker.errors import BrokerError, Forbidden, ProtocolError, Unauthenticated
from broker.handoff import HandoffNotice
from broker.protocol.chat import ChatAck, ChatSend
from broker.protocol.session import (
    DeliveryUpdate,
    Error,
    EventFrame,
    HandoffUpdate,
    Hello,
    Ping,
    Pong,
    Presence,
    SessionUpdate,
    Synced,
    Welcome,
)
from broker.sessions import (
    ALL_SESSIONS_TOPIC,
    Access,
    Actor,
    Event,
    Role,
    Session,
    SessionState,
    Signal,
    Takeover,
    session_topic,
    technician_topic,
)
from broker.technicians import Technician

from .auth import cookie_technician
from .state import SOCKETS, get_broker
from .views import delivery_json, event_json, handoff_json, session_json

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
M = TypeVar("M", bound=protocol.Message)

CLOSE_UNAUTHENTICATED: Final = 4401
CLOSE_FORBIDDEN: Final = 4403
CLOSE_REPLACED: Final = 4000
CLOSE_TOO_SLOW: Final = 4008
CLOSE_ENDED: Final = 4010
HELLO_TIMEOUT: Final = 10.0
# How long an event that arrived ahead of its predecessor waits for it (see _Follower).
GAP_GRACE_SECONDS: Final = 0.02
_CLOSE = object()

# The participant a socket speaks for -> its connection; a second socket replaces the first
# (on another node, a Takeover on the session's topic does it).
_OPEN: Final = web.AppKey("open_connections", dict[tuple[str, str], "Connection"])


class Connection:
    """One socket's outbound side: a bounded queue, drained by a writer task that exists
    only while there is something to write (an idle socket holds no task)."""

    def __init__(self, ws: web.WebSocketResponse, limit: int, name: str) -> None:
        self.ws = ws
        self._limit = limit
        self._name = name
        # A plain list: an idle socket's empty queue costs 56 bytes, a deque's ~600.
        self._items: list[Any] = []
        self._writer: asyncio.Task[None] | None = None
        self._room: asyncio.Event | None = None  # only while a bulk sender waits
        self.closing = False
        self.id = ""  # set when other nodes must be able to name it (see Takeover)

    def send(self, message: protocol.Message) -> None:
        if not self.closing:
            self.send_encoded(protocol.encode(message))

    def send_encoded(self, text: str) -> None:
        """Queue a frame encoded already (an event goes to every socket of a session, and
        is encoded once for all of them)."""
        if self.closing:
            return
        if len(self._items) >= self._limit:
            log.warning("%s fell %d messages behind; disconnecting it to resume later",
                        self._name, len(self._items))
            self.close(CLOSE_TOO_SLOW, "too slow: reconnect and resume", drop_pending=True)
            return
        self._items.append(text)
        self._wake()

    def _wake(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name=self._name)

    @property
    def half(self) -> int:
        return max(1, self._limit // 2)

    async def wait_for_room(self) -> None:
        """Until the queue is at most half full (or the socket is closing): how a bulk
        sender, like a long replay, keeps to the pace of the client."""
        while len(self._items) > self.half and not self.closing:
            self._room = self._room or asyncio.Event()
            await self._room.wait()
            self._room = None

    def close(self, code: int, reason: str, *, drop_pending: bool = False) -> None:
        """Close after what is queued, or at once with `drop_pending` (the client resumes)."""
        if self.closing:
            return
        self.closing = True
        if self._room is not None:
            self._room.set()
        if drop_pending:
            self._items.clear()
        self._items.append((_CLOSE, code, reason))
        self._wake()

    async def _drain(self) -> None:
        try:
            while self._items:
                item = self._items.pop(0)  # short queues: O(n) is cheaper than a deque
                if isinstance(item, tuple):
                    await self.ws.close(code=item[1], message=item[2].encode())
                    self._items.clear()
                    return
                await self.ws.send_str(item)
                if self._room is not None and len(self._items) <= self.half:
                    self._room.set()
        except (ConnectionError, RuntimeError):
            self._items.clear()  # the peer went away; the reader notices too
        finally:
            self._writer = None  # a finished task kept per idle socket is ~0.3 KiB

    async def drain_and_stop(self) -> None:
        self.close(WSCloseCode.OK, "")
        writer = self._writer
        if writer is not None and not writer.done():
            try:
                await asyncio.wait_for(writer, 2)
            except (TimeoutError, asyncio.CancelledError):
                writer.cancel()


class FrameCache:
    """The latest events' frames, so an event going to every socket of a session is
    encoded once for all of them (a cache: losing an entry only costs an encode)."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._frames: collections.OrderedDict[tuple[str, int], str] = collections.OrderedDict()

    def frame(self, event: Event) -> str:
        key = (event.session_id, event.seq)
        frame = self._frames.get(key)
        if frame is None:
            frame = self._frames[key] = protocol.encode(EventFrame(event_json(event)))
            if len(self._frames) > self._size:
                self._frames.popitem(last=False)
        return frame


_FRAME_CACHE: Final = web.AppKey("frame_cache", FrameCache)


def _new_socket(request: web.Request) -> web.WebSocketResponse:
    settings = get_broker(request.app).settings
    # No permessage-deflate: it costs ~7.5x the memory per connection.
    # Twice the protocol's limit, so an oversized frame gets our frame_too_large error
    # instead of aiohttp closing the socket with 1009.
    return web.WebSocketResponse(compress=False, heartbeat=settings.ws_heartbeat_seconds,
                                 max_msg_size=2 * protocol.MAX_FRAME)


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin.split("://", 1)[-1] == request.host


async def _read_hello(ws: web.WebSocketResponse) -> Hello:
    try:
        message = await ws.receive(timeout=HELLO_TIMEOUT)
    except TimeoutError as exc:
        raise Unauthenticated("Send hello first.") from exc
    if message.type != WSMsgType.TEXT:
        raise Unauthenticated("Send hello first.")
    hello = protocol.decode(message.data)
    if not isinstance(hello, Hello):
        raise Unauthenticated("Send hello first.")
    return hello


@routes.get("/api/v1/sessions/{session_id}/ws")
async def session_socket(request: web.Request) -> web.WebSocketResponse:
    broker = get_broker(request.app)
    session_id = request.match_info["session_id"]
    # A cookie login only counts from our own pages (no cross-site WebSocket hijacking).
    cookie_tech = await cookie_technician(request) if _same_origin(request) else None
    ws = _new_socket(request)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    conn = Connection(ws, broker.settings.ws_send_queue, f"socket of session {session_id}")
    follower: _Follower | None = None
    key: tuple[str, str] | None = None
    counted: Role | None = None
    try:
        try:
            hello = await _read_hello(ws)
            session, actor = await _authenticate(request, session_id, hello, cookie_tech)
        except BrokerError as error:
            conn.send(Error(error.code, error.message))
            conn.close(CLOSE_FORBIDDEN if isinstance(error, Forbidden) else CLOSE_UNAUTHENTICATED,
                       error.code)
            await conn.drain_and_stop()
            return ws
        key = (session_id, actor.sender)
        previous = request.app[_OPEN].get(key)
        if previous is not None:
            previous.close(CLOSE_REPLACED, "replaced by a newer connection")
        request.app[_OPEN][key] = conn
        broker.metrics.sockets.labels(actor.role.value).inc()
        counted = actor.role
        session = await _arrive(request, session, actor, conn)
        follower = _Follower(broker, conn, session.id, actor, hello.after,
                             request.app[_FRAME_CACHE])
        await follower.start(session)
        conn.send(await _presence_of(broker, session_id))
        await _serve(request, conn, session, actor)
    finally:
        if follower is not None:
            await follower.stop()
        if key is not None:
            if request.app[_OPEN].get(key) is conn:
                del request.app[_OPEN][key]
            await _depart(request, session_id, actor)
        if counted is not None:
            broker.metrics.sockets.labels(counted.value).dec()
        await conn.drain_and_stop()
    return ws


async def _arrive(request: web.Request, session: Session, actor: Actor,
                  conn: Connection) -> Session:
    """Count the new socket in; an end user's return ends a running reconnect window."""
    broker = get_broker(request.app)
    if broker.settings.several_nodes:
        # The participant's older socket may be on another node: it closes there.
        conn.id = secrets.token_urlsafe(12)
        broker.bus.publish(session_topic(session.id),
                           Takeover(session.id, actor.sender, conn.id))
    if await broker.roster.arrive(session.id, actor.role):
        broker.bus.publish(session_topic(session.id), Signal(
            session.id, await _presence_of(broker, session.id), exclude=actor.sender))
    if actor.role is Role.END_USER and (session.state is SessionState.RECONNECTING
                                        or broker.settings.several_nodes):
        if await broker.sessions.end_user_back(session.id, actor):
            return await broker.sessions.get(session.id)
    return session


async def _depart(request: web.Request, session_id: str, actor: Actor) -> None:
    """Count a closed socket out; the end user's last one starts the reconnect window."""
    broker = get_broker(request.app)
    if not await broker.roster.depart(session_id, actor.role):
        return
    broker.bus.publish(session_topic(session_id), Signal(
        session_id, await _presence_of(broker, session_id), exclude=actor.sender))
    if actor.role is Role.END_USER:
        await broker.sessions.end_user_left(session_id, actor)


async def _authenticate(request: web.Request, session_id: str, hello: Hello,
                        cookie_tech: Technician | None) -> tuple[Session, Actor]:
    broker = get_broker(request.app)
    if hello.token and hello.token.startswith("sbp_"):
        return await broker.sessions.for_participant(session_id, hello.token)
    technician = cookie_tech
    if hello.token:
        technician = await broker.technicians.by_token(hello.token)
    if technician is None:
        raise Unauthenticated("This socket needs a participant token or a technician login.")
    session = await broker.sessions.for_technician(session_id, technician, Access.COLLABORATOR)
    return session, broker.sessions.technician_actor(technician)


class _Follower:
    """Sends a socket what it missed, then live events, with no gap and no repeat.

    Events are numbered, so the rule is simple: send event `last_sent + 1` next. One from
    further ahead means others are missing (another node's event still on its way, or
    lost while the bus between nodes was down): they are read from the database, while
    whatever arrives meanwhile waits in a buffer. The first replay after hello is such a
    fill; the bus's resync (it reconnected, or this node's subscription just took effect)
    starts another one.
    """

    def __init__(self, broker: Broker, conn: Connection, session_id: str, actor: Actor,
                 after: int, frames: FrameCache) -> None:
        self._broker = broker
        self._conn = conn
        self._frames = frames
        self._session_id = session_id
        self._actor = actor
        self.last_sent = after
        self._filling = True
        self._again = False
        self._buffer: list[Event] = []
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self, session: Session) -> None:
        """Subscribe, send the welcome and the replay, then `synced`."""
        conn = self._conn
        self._unsubscribe = self._broker.bus.subscribe(
            session_topic(session.id), self._on_message, self._on_resync)
        conn.send(Welcome(session_json(session), self._actor.public()))
        ended = session.state is SessionState.ENDED
        ended = await self._replay(live=False) or ended
        self._finish_fill(synced=True)
        if ended:
            conn.close(CLOSE_ENDED, "session ended")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def _on_message(self, message: Event | Signal | Takeover) -> None:
        if isinstance(message, Signal):
            if message.for_actor(self._actor.sender):
                self._conn.send(message.frame)
            return
        if isinstance(message, Takeover):
            if message.sender == self._actor.sender and message.connection != self._conn.id:
                self._conn.close(CLOSE_REPLACED, "replaced by a newer connection")
            return
        if not isinstance(message, Event):
            return
        if self._filling:
            self._buffer.append(message)
        elif message.seq == self.last_sent + 1:
            self._send(message)
        elif message.seq > self.last_sent:
            self._buffer.append(message)
            self._fill(grace=True)

    def _on_resync(self) -> None:
        if self._filling:
            self._again = True
        else:
            self._fill(presence=True)

    def _fill(self, *, presence: bool = False, grace: bool = False) -> None:
        self._filling = True
        self._task = asyncio.create_task(self._fill_from_database(presence, grace),
                                         name=f"gap fill {self._session_id}")

    async def _fill_from_database(self, presence: bool, grace: bool) -> None:
        try:
            if grace:
                # Usually the missing event is another node's, a moment behind this one's:
                # give it that moment before asking the database.
                await asyncio.sleep(GAP_GRACE_SECONDS)
            if not (grace and min(e.seq for e in self._buffer) == self.last_sent + 1):
                await self._replay(live=True)
            if presence:
                self._conn.send(await _presence_of(self._broker, self._session_id))
        except Exception:
            log.exception("could not fill a gap in session %s; the client resumes later",
                          self._session_id)
            self._conn.close(CLOSE_TOO_SLOW, "too slow: reconnect and resume", drop_pending=True)
        self._finish_fill(synced=False)

    async def _replay(self, *, live: bool) -> bool:
        """Send the stored events after `last_sent`, at the client's pace. True if one of
        them ended the session."""
        conn = self._conn
        ended = False
        while not conn.closing:
            page = await self._broker.sessions.events_after(self._session_id, self.last_sent,
                                                            conn.half)
            for event in page:
                if live:
                    self._send(event)
                else:
                    conn.send_encoded(self._frames.frame(event))
                    self.last_sent = event.seq
                ended = ended or event.type == "ended"
            if len(page) < conn.half:
                break
            await conn.wait_for_room()
        return ended

    def _finish_fill(self, *, synced: bool) -> None:
        """Back to live: what arrived meanwhile goes out in order; a gap starts over."""
        self._filling = False
        buffered, self._buffer = sorted(self._buffer, key=lambda e: e.seq), []
        for index, event in enumerate(buffered):
            if event.seq <= self.last_sent:
                continue
            if event.seq > self.last_sent + 1:
                self._buffer = buffered[index:]
                self._again = True
                break
            self._send(event)
        if synced:
            self._conn.send(Synced(self.last_sent))
        if self._again and not self._conn.closing:
            self._again = False
            self._fill(presence=not synced)

    def _send(self, event: Event) -> None:
        self.last_sent = event.seq
        self._conn.send_encoded(self._frames.frame(event))
        if event.type == "ended":
            self._conn.close(CLOSE_ENDED, "session ended")
        elif _loses_access(event, self._actor):
            self._conn.close(CLOSE_FORBIDDEN, "no longer in this session")


async def _presence_of(broker: Broker, session_id: str) -> Presence:
    roles = await broker.roster.present(session_id)
    return Presence(technician=Role.TECHNICIAN in roles, end_user=Role.END_USER in roles)


@dataclasses.dataclass(frozen=True, slots=True)
class Participant:
    """One authenticated session socket, as message handlers see it."""

    request: web.Request
    conn: Connection
    session: Session
    actor: Actor

    @property
    def broker(self) -> Broker:
        return get_broker(self.request.app)


Handler = Callable[[Participant, Any], Awaitable[None]]
# Message type -> handler. Each message family registers its own (see `handles`).
HANDLERS: Final[dict[type[protocol.Message], Handler]] = {}


def handles(kind: type[M]) -> Callable[[Callable[[Participant, M], Awaitable[None]]], Handler]:
    def register(handler: Callable[[Participant, M], Awaitable[None]]) -> Handler:
        HANDLERS[kind] = handler
        return handler
    return register


# Called once when a session socket's reading ends (the agent's departure is stored).
CLOSE_HOOKS: Final[list[Callable[[Participant], Awaitable[None]]]] = []


@handles(ChatSend)
async def _chat(p: Participant, message: ChatSend) -> None:
    seq, _ = await p.broker.sessions.post_message(p.session.id, p.actor, message.text,
                                                  message.id)
    p.conn.send(ChatAck(message.id, seq))


@handles(Ping)
async def _ping(p: Participant, message: Ping) -> None:
    p.conn.send(Pong())


@handles(Hello)
async def _hello_again(p: Participant, message: Hello) -> None:
    raise ProtocolError("Already authenticated.", code="already_authenticated")


def _loses_access(event: Event, actor: Actor) -> bool:
    """A technician who handed the session over (without staying) or left it stops
    receiving its events at once."""
    if actor.role is not Role.TECHNICIAN:
        return False
    if event.type == "handed_over":
        return bool(event.data.get("from_id") == actor.id and not event.data.get("stays"))
    return event.type == "technician_left" and event.data.get("id") == actor.id


async def _serve(request: web.Request, conn: Connection, session: Session, actor: Actor) -> None:
    participant = Participant(request, conn, session, actor)
    try:
        await _read(participant)
    finally:
        for hook in CLOSE_HOOKS:
            try:
                await hook(participant)
            except Exception:
                log.exception("a socket close hook failed")


async def _read(participant: Participant) -> None:
    conn = participant.conn
    async for message in conn.ws:
        if message.type != WSMsgType.TEXT:
            if message.type == WSMsgType.BINARY:
                conn.send(Error("bad_message", "Binary frames are not part of this protocol."))
            continue
        ref: str | None = None
        try:
            decoded = protocol.decode(message.data)
            ref = getattr(decoded, "id", None)  # errors name the client's message id
            handler = HANDLERS.get(type(decoded))
            if handler is None:
                raise ProtocolError(f"{decoded.TYPE} is not accepted here.",
                                    code="unknown_type")
            await handler(participant, decoded)
        except BrokerError as error:
            conn.send(Error(error.code, error.message, ref))


@routes.get("/api/v1/technician/ws")
async def technician_socket(request: web.Request) -> web.WebSocketResponse:
    """Live changes to the technician's session list, for the dashboard."""
    broker = get_broker(request.app)
    technician = await cookie_technician(request) if _same_origin(request) else None
    ws = _new_socket(request)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    conn = Connection(ws, broker.settings.ws_send_queue, "dashboard socket")
    if technician is None:
        conn.send(Error("unauthenticated", "Log in first."))
        conn.close(CLOSE_UNAUTHENTICATED, "unauthenticated")
        await conn.drain_and_stop()
        return ws
    topic = ALL_SESSIONS_TOPIC if technician.is_admin else technician_topic(technician.id)

    def on_change(change: Session | Delivery | HandoffNotice) -> None:
        if isinstance(change, Session):
            conn.send(SessionUpdate(session_json(change)))
        elif isinstance(change, HandoffNotice):
            conn.send(HandoffUpdate(handoff_json(change, broker.clock.now())))
        elif isinstance(change, Delivery):
            conn.send(DeliveryUpdate(delivery_json(change)))

    async def send_all() -> None:
        for session in reversed(await broker.sessions.visible_to(technician)):
            conn.send(SessionUpdate(session_json(session)))
        for handoff in await broker.handoffs.pending_for(technician):
            on_change(await broker.handoffs.notice(handoff))

    resyncs: set[asyncio.Task[None]] = set()

    def on_resync() -> None:
        """Changes may have been missed between nodes: send the whole list again, as after
        a reconnect."""
        task = asyncio.create_task(send_all(), name="dashboard resync")
        resyncs.add(task)
        task.add_done_callback(resyncs.discard)

    subscriptions = [broker.bus.subscribe(topic, on_change, on_resync)]
    if technician.is_admin:  # transfers offered to the admin in person
        subscriptions.append(broker.bus.subscribe(technician_topic(technician.id), on_change,
                                                  on_resync))
    await broker.roster.dashboard_opened(technician.id)
    broker.metrics.sockets.labels("dashboard").inc()
    try:
        await send_all()
        async for _ in ws:
            pass  # the dashboard only listens
    finally:
        broker.metrics.sockets.labels("dashboard").dec()
        await broker.roster.dashboard_closed(technician.id)
        for unsubscribe in subscriptions:
            unsubscribe()
        for task in resyncs:
            task.cancel()
        await conn.drain_and_stop()
    return ws


def setup(app: web.Application) -> None:
    app[_FRAME_CACHE] = FrameCache()
    app[_OPEN] = {}
    app.add_routes(routes)

