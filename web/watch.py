"""Watching a live session read-only (docs/supervision.md): the page
`/supervise/{session_id}` and its socket `/api/v1/sessions/{session_id}/watch`. Admins
watch any session, team leads their teams'; the session's technicians are told who
watches while the socket is open, and the audit log keeps when it started and stopped."""

from __future__ import annotations

import asyncio

import aiohttp_jinja2
from aiohttp import web

from broker.errors import BrokerError
from broker.protocol.session import CloseCode, Error, Synced
from broker.sessions import Event, Session, Signal, session_topic
from broker.technicians import Technician

from . import watch_relay
from .auth import cookie_signed_in
from .pages import page_technician
from .scopes import NO_TOKEN, needs
from .signouts import Opener, get_signouts
from .state import SOCKETS, get_broker
from .views import session_json
from .ws import Connection, FrameCache, new_socket, same_origin

routes = web.RouteTableDef()


@routes.get("/supervise/{session_id}")
async def watch_page(request: web.Request) -> web.Response:
    technician = await page_technician(request)
    broker = get_broker(request.app)
    session = await broker.sessions.get(request.match_info["session_id"])
    await broker.supervision.require_session(technician, session)
    return aiohttp_jinja2.render_template("watch.html", request, {
        "technician": technician, "session": session_json(session),
        "tell_end_user": broker.settings.supervision_tell_end_user})


async def _refuse(conn: Connection, error: Error, code: CloseCode) -> None:
    conn.send(error)
    conn.close(code, error.code)
    await conn.drain_and_stop()


@routes.get("/api/v1/sessions/{session_id}/watch")
@needs(NO_TOKEN)
async def watch_socket(request: web.Request) -> web.WebSocketResponse:
    """The session's events, replayed and then live, for a supervisor: read-only (the
    socket takes only the signaling that brings the shared screen, web/watch_relay.py)."""
    broker = get_broker(request.app)
    found = await cookie_signed_in(request) if same_origin(request) else None
    ws = new_socket(request)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    conn = Connection(ws, broker.settings.ws_send_queue, "watch socket")
    if found is None:
        await _refuse(conn, Error("unauthenticated", "Log in first."),
                      CloseCode.UNAUTHENTICATED)
        return ws
    technician, login_id = found
    try:
        session = await broker.sessions.get(request.match_info["session_id"])
        await broker.supervision.require_session(technician, session)
    except BrokerError as exc:  # not a supervisor of it, or no such session: the same
        await _refuse(conn, Error("forbidden", str(exc) if exc.code == "forbidden" else
                                  "Only admins and team leads supervise sessions."),
                      CloseCode.FORBIDDEN)
        return ws
    async with get_signouts(request.app).tracked(Opener(technician.id, login_id), conn):
        if not conn.closing:
            await _watch(request, conn, technician, session)
    return ws


async def _watch(request: web.Request, conn: Connection, technician: Technician,
                 session: Session) -> None:
    broker = get_broker(request.app)
    frames = FrameCache(size=64)
    last = [0]  # the newest sequence number sent
    live: list[Event] = []  # arrived during the replay
    replaying = [True]

    def forward(event: Event) -> None:
        if event.seq > last[0]:
            last[0] = event.seq
            conn.send_encoded(frames.frame(event))

    watcher = watch_relay.Watcher(session.id, technician)

    def on_message(message: object) -> None:
        if isinstance(message, Event):
            if replaying[0]:
                live.append(message)
            else:
                forward(message)
        elif isinstance(message, Signal) and watcher.wants(message):
            # The relay's signaling for this socket; other signals are the participants'.
            conn.send(message.frame)

    await broker.supervision.watching(technician, session, started=True)
    unsubscribe = broker.bus.subscribe(session_topic(session.id), on_message)
    try:
        while True:
            page = await broker.sessions.events_after(session.id, last[0], 500)
            for event in page:
                forward(event)
            if len(page) < 500:
                break
            await conn.wait_for_room()
        for event in live:
            forward(event)
        replaying[0] = False
        conn.send(Synced(last[0]))
        await watch_relay.serve(request, conn, watcher)
    finally:
        unsubscribe()
        # Both also when the socket's task is cancelled (a shutdown, the page gone).
        await asyncio.shield(_stopped(request, watcher, technician, session))


async def _stopped(request: web.Request, watcher: watch_relay.Watcher,
                   technician: Technician, session: Session) -> None:
    """The watch ended: its relays close, and it is recorded and told."""
    await watch_relay.gone(request, watcher)
    await get_broker(request.app).supervision.watching(technician, session, started=False)
