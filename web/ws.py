"""The session socket: one per participant (the dashboard's is in web/dashboard.py).

A socket starts with an auth phase (the client's ``hello``); then the participant attends
the session (broker/sessions/attendance.py: the replay of what they missed by sequence
number, live events, presence, takeover, reconnect windows) through the socket's
`SessionConnection`, while this module reads their frames and dispatches them to the
handlers each part registers. Each socket has one writer task and a bounded queue; a
client that falls too far behind is disconnected (close code 4008) and resumes from its
last sequence number, so nothing is ever skipped silently.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web
from yarl import URL

from broker import protocol
from broker.core import Broker
from broker.credentials import is_participant_token
from broker.errors import BrokerError, Forbidden, ProtocolError, Unauthenticated
from broker.protocol.chat import ChatAck, ChatSend
from broker.protocol.session import CloseCode, Error, EventFrame, Hello, Ping, Pong, Welcome
from broker.sessions import Access, Actor, Event, Session
from broker.technicians import Scope, Technician

from .auth import cookie_signed_in, token_grant
from .scopes import needs
from .signouts import Opener, get_signouts
from .state import SOCKETS, get_broker
from .views import event_json, session_json

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
M = TypeVar("M", bound=protocol.Message)

HELLO_TIMEOUT: Final = 10.0
_CLOSE = object()


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

    def send(self, message: protocol.Message) -> None:
        if not self.closing:
            self.send_encoded(protocol.encode(message))

    def send_encoded(self, text: str) -> None:
        """Queue a frame encoded already."""
        if self.closing:
            return
        if len(self._items) >= self._limit:
            log.warning("%s fell %d messages behind; disconnecting it to resume later",
                        self._name, len(self._items))
            self.close(CloseCode.TOO_SLOW, "too slow: reconnect and resume", drop_pending=True)
            return
        self._items.append(text)
        self._wake()

    def _wake(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name=self._name)

    @property
    def page_size(self) -> int:
        return max(1, self._limit // 2)

    async def wait_for_room(self) -> None:
        """Until the queue is at most half full (or the socket is closing): how a bulk
        sender, like a long replay, keeps to the pace of the client."""
        while len(self._items) > self.page_size and not self.closing:
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
                if self._room is not None and len(self._items) <= self.page_size:
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


class SessionConnection(Connection):
    """A session socket's outbound side: the session's `Outbox` over a WebSocket."""

    def __init__(self, ws: web.WebSocketResponse, limit: int, name: str,
                 frames: FrameCache) -> None:
        super().__init__(ws, limit, name)
        self._frames = frames

    def send_welcome(self, session: Session, actor: Actor) -> None:
        self.send(Welcome(session_json(session), actor.public()))

    def send_event(self, event: Event) -> None:
        # An event goes to every socket of its session: encoded once for all of them.
        if not self.closing:
            self.send_encoded(self._frames.frame(event))


def new_socket(request: web.Request) -> web.WebSocketResponse:
    settings = get_broker(request.app).settings
    # No permessage-deflate: it costs ~7.5x the memory per connection.
    # Twice the protocol's limit, so an oversized frame gets our frame_too_large error
    # instead of aiohttp closing the socket with 1009.
    return web.WebSocketResponse(compress=False, heartbeat=settings.ws_heartbeat_seconds,
                                 max_msg_size=2 * protocol.MAX_FRAME)


def same_origin(request: web.Request) -> bool:
    """Whether a socket's handshake comes from the broker's own pages: it has no `Origin`
    (not a browser), or one whose scheme, host and port are those of `public_url` (unset:
    of the request itself, its scheme and `Host`)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    public_url = get_broker(request.app).settings.public_url
    own = _origin_of(public_url or f"{request.scheme}://{request.host}")
    return own is not None and _origin_of(origin) == own


def _origin_of(url: str) -> tuple[str, str, int] | None:
    """Scheme, host and port (the scheme's default port if none is written); None for
    what is no http(s) origin (`null`, garbage)."""
    try:
        parsed = URL(url)
        host, port = parsed.host, parsed.port
    except ValueError:
        return None
    if parsed.scheme not in ("http", "https") or not host or port is None:
        return None
    return parsed.scheme, host.lower(), port


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
@needs(Scope.SESSIONS_WRITE)
async def session_socket(request: web.Request) -> web.WebSocketResponse:
    broker = get_broker(request.app)
    session_id = request.match_info["session_id"]
    # A cookie login only counts from our own pages (no cross-site WebSocket hijacking).
    cookie_login = await cookie_signed_in(request) if same_origin(request) else None
    ws = new_socket(request)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    conn = SessionConnection(ws, broker.settings.ws_send_queue,
                             f"socket of session {session_id}", request.app[_FRAME_CACHE])
    try:
        try:
            hello = await _read_hello(ws)
            session, actor, opener = await _authenticate(request, session_id, hello,
                                                         cookie_login)
        except BrokerError as error:
            conn.send(Error(error.code, error.message))
            conn.close(CloseCode.FORBIDDEN if isinstance(error, Forbidden)
                       else CloseCode.UNAUTHENTICATED, error.code)
            return ws
        sockets = broker.metrics.sockets.labels(actor.role.value)
        sockets.inc()
        # A technician's socket closes when the login or token it was opened with ends.
        untrack = (await get_signouts(request.app).track(opener, conn) if opener is not None
                   else None)
        try:
            if not conn.closing:
                attendance = await broker.attendance.arrive(session, actor, conn,
                                                            after=hello.after)
                # Supervisors watching it say so again (docs/supervision.md).
                broker.supervision.arrived(session.id, actor)
                try:
                    await _serve(Participant(request, conn, attendance.session, actor))
                finally:
                    await broker.attendance.leave(attendance)
        finally:
            if untrack is not None:
                untrack()
            sockets.dec()
    finally:
        await conn.drain_and_stop()
    return ws


async def _authenticate(request: web.Request, session_id: str, hello: Hello,
                        cookie_login: tuple[Technician, str] | None
                        ) -> tuple[Session, Actor, Opener | None]:
    """The session, who the socket is in it, and the technician credential that opened it."""
    broker = get_broker(request.app)
    if is_participant_token(hello.token):
        return *await broker.sessions.for_participant(session_id, hello.token), None
    if hello.token:
        grant = await token_grant(request, hello.token)
        technician = grant.technician
        opener = Opener(technician.id, token_id=grant.token.id)
    elif cookie_login is not None:
        technician, login_id = cookie_login
        opener = Opener(technician.id, login_id)
    else:
        raise Unauthenticated("This socket needs a participant token or a technician login.")
    session = await broker.sessions.for_technician(session_id, technician, Access.COLLABORATOR)
    return session, broker.sessions.technician_actor(technician), opener


@dataclasses.dataclass(frozen=True, slots=True)
class Participant:
    """One authenticated session socket, as message handlers see it."""

    request: web.Request
    conn: SessionConnection
    session: Session
    actor: Actor

    @property
    def broker(self) -> Broker:
        return get_broker(self.request.app)


Handler = Callable[[Participant, Any], Awaitable[None]]
CloseHook = Callable[[Participant], Awaitable[None]]


class FrameHandlers:
    """What a session socket does with each client frame, and what runs once its reading
    ends. Made by create_app; each part registers its own frames in its `setup(app)`."""

    def __init__(self) -> None:
        self._handlers: dict[type[protocol.Message], Handler] = {}
        self._close_hooks: list[CloseHook] = []

    def add(self, kind: type[M], handler: Callable[[Participant, M], Awaitable[None]]) -> None:
        if kind in self._handlers:
            raise ValueError(f"{kind.TYPE} has a handler already")
        self._handlers[kind] = handler

    def on_close(self, hook: CloseHook) -> None:
        self._close_hooks.append(hook)

    async def dispatch(self, participant: Participant, message: protocol.Message) -> None:
        handler = self._handlers.get(type(message))
        if handler is None:
            raise ProtocolError(f"{message.TYPE} is not accepted here.", code="unknown_type")
        await handler(participant, message)

    async def closed(self, participant: Participant) -> None:
        for hook in self._close_hooks:
            try:
                await hook(participant)
            except Exception:
                log.exception("a socket close hook failed")


FRAME_HANDLERS: Final = web.AppKey("frame_handlers", FrameHandlers)


def get_frame_handlers(app: web.Application) -> FrameHandlers:
    try:
        return app[FRAME_HANDLERS]
    except KeyError:
        raise RuntimeError("no frame handlers: create_app() makes them") from None


async def _chat(p: Participant, message: ChatSend) -> None:
    seq, _ = await p.broker.sessions.post_message(p.session.id, p.actor, message.text,
                                                  message.id)
    p.conn.send(ChatAck(message.id, seq))


async def _ping(p: Participant, message: Ping) -> None:
    p.conn.send(Pong())


async def _hello_again(p: Participant, message: Hello) -> None:
    raise ProtocolError("Already authenticated.", code="already_authenticated")


async def _serve(participant: Participant) -> None:
    handlers = get_frame_handlers(participant.request.app)
    try:
        await _read(participant, handlers)
    finally:
        await handlers.closed(participant)


async def _read(participant: Participant, handlers: FrameHandlers) -> None:
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
            await handlers.dispatch(participant, decoded)
        except BrokerError as error:
            conn.send(Error(error.code, error.message, ref))


def setup(app: web.Application) -> None:
    app[_FRAME_CACHE] = FrameCache()
    handlers = get_frame_handlers(app)
    handlers.add(ChatSend, _chat)
    handlers.add(Ping, _ping)
    handlers.add(Hello, _hello_again)
    app.add_routes(routes)

