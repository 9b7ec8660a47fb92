"""The supervisor board: `/supervise`, `GET /api/v1/supervision` and its socket
`/api/v1/supervision/ws`, and joining or taking over a session from it
(docs/supervision.md). Admins see every live session, team leads their teams'; everybody
else is refused."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from broker.clock import isoformat
from broker.errors import BrokerError, InvalidInput
from broker.protocol.session import CloseCode, Error
from broker.protocol.supervision import SupervisionUpdate
from broker.sessions import ALL_SESSIONS_TOPIC, Event, Session, session_topic
from broker.supervision import BoardEntry, Supervised
from broker.technicians import Scope, Technician

from .api import json_body
from .auth import cookie_signed_in, current_technician
from .pages import page_technician
from .scopes import NO_TOKEN, needs
from .signouts import Opener, get_signouts
from .state import SOCKETS, get_broker
from .views import session_json
from .ws import Connection, new_socket, same_origin

routes = web.RouteTableDef()


def entry_json(entry: BoardEntry) -> dict[str, Any]:
    duration = entry.duration_seconds
    return {**session_json(entry.session), "live": entry.live, "sharing": entry.sharing,
            "wait_seconds": round(entry.wait_seconds),
            "duration_seconds": None if duration is None else round(duration),
            "at": isoformat(entry.now)}


@routes.get("/supervise")
async def supervise_page(request: web.Request) -> web.Response:
    technician = await page_technician(request)
    scope = await get_broker(request.app).supervision.require(technician)
    return aiohttp_jinja2.render_template("supervise.html", request, {
        "technician": technician, "everyone": scope.everyone})


@routes.get("/api/v1/supervision")
@needs(Scope.SESSIONS_READ)
async def board(request: web.Request) -> web.Response:
    technician = await current_technician(request)
    scope, entries = await _board(request, technician)
    return web.json_response({"everyone": scope.everyone, "team_ids": sorted(scope.team_ids),
                              "sessions": [entry_json(entry) for entry in entries]})


async def _board(request: web.Request,
                 technician: Technician) -> tuple[Supervised, list[BoardEntry]]:
    supervision = get_broker(request.app).supervision
    scope = await supervision.require(technician)
    return scope, await supervision.board(technician)


@routes.post("/api/v1/sessions/{session_id}/supervision/join")
@needs(Scope.SESSIONS_WRITE)
async def join(request: web.Request) -> web.Response:
    """The supervisor joins the session as a collaborator."""
    technician = await current_technician(request)
    session = await get_broker(request.app).supervision.join(
        technician, request.match_info["session_id"])
    return web.json_response(session_json(session))


@routes.post("/api/v1/sessions/{session_id}/supervision/take-over")
@needs(Scope.SESSIONS_WRITE)
async def take_over(request: web.Request) -> web.Response:
    """The supervisor takes the session over, with a note for its technician."""
    technician = await current_technician(request)
    data = await json_body(request)
    note, keep = data.get("note"), data.get("keep_owner", True)
    if not isinstance(note, str):
        raise InvalidInput("Taking a session over needs a note for its technician.",
                           code="note_required")
    if not isinstance(keep, bool):
        raise InvalidInput("keep_owner must be true or false.")
    session = await get_broker(request.app).supervision.take_over(
        technician, request.match_info["session_id"], note, keep_owner=keep)
    return web.json_response(session_json(session))


@routes.get("/api/v1/supervision/ws")
@needs(NO_TOKEN)
async def supervision_socket(request: web.Request) -> web.WebSocketResponse:
    """The board's live changes: the whole board first, then every change of a session
    the supervisor oversees."""
    broker = get_broker(request.app)
    found = await cookie_signed_in(request) if same_origin(request) else None
    ws = new_socket(request)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    conn = Connection(ws, broker.settings.ws_send_queue, "supervision socket")
    scope = None if found is None else await broker.supervision.supervised(found[0])
    if found is None or scope is None:
        conn.send(Error("unauthenticated", "Log in first.") if found is None
                  else Error("forbidden", "Only admins and team leads supervise sessions."))
        conn.close(CloseCode.UNAUTHENTICATED if found is None else CloseCode.FORBIDDEN,
                   "unauthenticated" if found is None else "forbidden")
        await conn.drain_and_stop()
        return ws
    technician, login_id = found
    async with get_signouts(request.app).tracked(Opener(technician.id, login_id), conn):
        if not conn.closing:
            await _listen(request, conn, technician, scope)
    return ws


async def _listen(request: web.Request, conn: Connection, technician: Technician,
                  scope: Supervised) -> None:
    broker = get_broker(request.app)
    tasks: set[asyncio.Task[None]] = set()
    current = [scope]

    def spawn(work: Any, name: str) -> None:
        task = asyncio.create_task(work, name=name)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    watched: dict[str, Callable[[], None]] = {}  # the board's sessions' own topics

    def on_session_event(change: object) -> None:
        """A share started, paused or stopped: the board's "sharing" column changes."""
        if isinstance(change, Event) and change.type.startswith("share."):
            spawn(reload(change.session_id), "supervision share")

    async def reload(session_id: str) -> None:
        with contextlib.suppress(BrokerError):
            await send_entry(await broker.sessions.get(session_id))

    async def send_entry(session: Session) -> None:
        show(await broker.supervision.entry(session))

    def show(entry: BoardEntry) -> None:
        session = entry.session
        if entry.live and session.id not in watched:
            watched[session.id] = broker.bus.subscribe(session_topic(session.id),
                                                       on_session_event)
        elif not entry.live and session.id in watched:
            watched.pop(session.id)()
        conn.send(SupervisionUpdate(entry_json(entry)))

    async def send_all() -> None:
        """The whole board (again): also after changes between nodes may have been missed,
        and with the teams as they are now."""
        try:
            found = await broker.supervision.supervised(technician)
            if found is None:  # no longer a lead
                conn.close(CloseCode.FORBIDDEN, "forbidden")
                return
            current[0] = found
            for entry in await broker.supervision.board(technician):
                show(entry)
        except BrokerError:
            conn.close(CloseCode.FORBIDDEN, "forbidden")

    def on_change(change: object) -> None:
        if isinstance(change, Session) and current[0].covers(change):
            spawn(send_entry(change), "supervision entry")

    unsubscribe = broker.bus.subscribe(ALL_SESSIONS_TOPIC, on_change,
                                       lambda: spawn(send_all(), "supervision resync"))
    try:
        await send_all()
        async for _ in conn.ws:
            pass  # the board only listens
    finally:
        unsubscribe()
        for stop in watched.values():
            stop()
        for task in tasks:
            task.cancel()
