"""The technician's closing form's routes: admins keep the categories; a session's
technicians and admins record, after its end, its category, whether it was resolved and
a ticket number, and read them (broker/closing)."""

from __future__ import annotations

from aiohttp import web

from broker.credentials import is_participant_token
from broker.errors import Forbidden
from broker.technicians import Scope, Technician

from .api import json_body
from .auth import bearer_token, current_technician
from .handoff import admin
from .scopes import needs
from .state import get_broker

routes = web.RouteTableDef()


@routes.get("/api/v1/closing-categories")
@needs(Scope.SESSIONS_READ)
async def get_categories(request: web.Request) -> web.Response:
    await current_technician(request)
    config = await get_broker(request.app).closing.config()
    return web.json_response(config.to_json())


@routes.put("/api/v1/closing-categories")
@needs(Scope.ADMIN)
async def put_categories(request: web.Request) -> web.Response:
    await admin(request)
    config = await get_broker(request.app).closing.set_config(await json_body(request))
    return web.json_response(config.to_json())


@routes.get("/api/v1/sessions/{session_id}/closing")
@needs(Scope.SESSIONS_READ)
async def read_closing(request: web.Request) -> web.Response:
    technician = await _technician(request)
    found = await get_broker(request.app).closing.read(request.match_info["session_id"],
                                                       technician)
    return web.json_response({"closing": None if found is None else found.to_json()})


@routes.put("/api/v1/sessions/{session_id}/closing")
@needs(Scope.SESSIONS_WRITE)
async def record_closing(request: web.Request) -> web.Response:
    """Save the closing form of an ended session (again, to change it)."""
    technician = await _technician(request)
    closing = await get_broker(request.app).closing.record(
        request.match_info["session_id"], technician, await json_body(request))
    return web.json_response(closing.to_json())


async def _technician(request: web.Request) -> Technician:
    """The technician asking; an end user's credential is refused (403)."""
    token = bearer_token(request)
    if is_participant_token(token):
        await get_broker(request.app).sessions.participant(token)  # 401 if none at all
        raise Forbidden("Only the session's technicians record how it closed.")
    return await current_technician(request)
