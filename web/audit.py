"""The audit log over HTTP: `GET /api/v1/audit`, a page of records for admins
(broker/audit; docs/audit.md)."""

from __future__ import annotations

from aiohttp import web

from broker.audit import AuditQuery
from broker.technicians import Scope

from .handoff import admin
from .scopes import needs
from .state import get_broker

routes = web.RouteTableDef()


@routes.get("/api/v1/audit")
@needs(Scope.ADMIN)
async def list_audit(request: web.Request) -> web.Response:
    """Newest first, filtered by time, actor, session and action, a page at a time."""
    await admin(request)
    page = await get_broker(request.app).audit.page(AuditQuery.parse(request.query))
    return web.json_response({"records": [record.public() for record in page.records],
                              "next_cursor": page.next_cursor})
