"""The technician dashboard's socket: live changes to the technician's session list, key
deliveries and handoffs. While it is open the technician counts as online."""

from __future__ import annotations

import asyncio

from aiohttp import web

from broker.delivery import Delivery
from broker.handoff import HandoffNotice
from broker.intake import TargetAlert
from broker.protocol.queue import RequestAlert
from broker.protocol.session import (
    CloseCode,
    DeliveryUpdate,
    Error,
    HandoffUpdate,
    SessionUpdate,
    WebhookDisabled,
)
from broker.sessions import ALL_SESSIONS_TOPIC, Session, technician_topic
from broker.technicians import Technician

from .auth import cookie_signed_in
from .scopes import NO_TOKEN, needs
from .signouts import Opener, get_signouts
from .state import SOCKETS, get_broker
from .views import delivery_json, handoff_json, request_json, session_json
from .ws import Connection, new_socket, same_origin

routes = web.RouteTableDef()


@routes.get("/api/v1/technician/ws")
@needs(NO_TOKEN)
async def technician_socket(request: web.Request) -> web.WebSocketResponse:
    """Live changes to the technician's session list, for the dashboard."""
    broker = get_broker(request.app)
    found = await cookie_signed_in(request) if same_origin(request) else None
    ws = new_socket(request)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    conn = Connection(ws, broker.settings.ws_send_queue, "dashboard socket")
    if found is None:
        conn.send(Error("unauthenticated", "Log in first."))
        conn.close(CloseCode.UNAUTHENTICATED, "unauthenticated")
        await conn.drain_and_stop()
        return ws
    technician, login_id = found
    # Closed (4401, the ending as reason) when this login ends, on whichever node.
    async with get_signouts(request.app).tracked(Opener(technician.id, login_id), conn):
        if not conn.closing:
            await _listen(request, conn, technician)
    return ws


async def _listen(request: web.Request, conn: Connection, technician: Technician) -> None:
    broker = get_broker(request.app)
    topic = ALL_SESSIONS_TOPIC if technician.is_admin else technician_topic(technician.id)

    def on_change(change: Session | Delivery | HandoffNotice | TargetAlert
                  | WebhookDisabled) -> None:
        if isinstance(change, Session):
            conn.send(SessionUpdate(session_json(change)))
        elif isinstance(change, HandoffNotice):
            conn.send(HandoffUpdate(handoff_json(change, broker.clock.now())))
        elif isinstance(change, Delivery):
            conn.send(DeliveryUpdate(delivery_json(change)))
        elif isinstance(change, TargetAlert):
            conn.send(RequestAlert(change.level.value,
                                   request_json(change.request, broker.clock.now())))
        elif isinstance(change, WebhookDisabled):  # on the admins' topic only
            conn.send(change)

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
        async for _ in conn.ws:
            pass  # the dashboard only listens
    finally:
        broker.metrics.sockets.labels("dashboard").dec()
        await broker.roster.dashboard_closed(technician.id)
        for unsubscribe in subscriptions:
            unsubscribe()
        for task in resyncs:
            task.cancel()
