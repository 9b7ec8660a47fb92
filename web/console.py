"""The technician console's own API: canned responses and the caller's preferences.
`docs/api.md` documents every route."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.canned import PLACEHOLDERS, Listed
from broker.clock import isoformat
from broker.errors import InvalidInput
from broker.inputs import in_range, whole_number
from broker.technicians import Scope

from .api import json_body
from .auth import current_technician
from .scopes import needs
from .state import get_broker

routes = web.RouteTableDef()


def canned_json(listed: Listed) -> dict[str, Any]:
    response = listed.response
    return {
        "id": response.id,
        "scope": response.shelf.scope.value,
        "team_id": response.shelf.team_id,
        "team_name": listed.team_name,
        "title": response.title,
        "text": response.text,
        "shortcut": response.shortcut,
        "editable": listed.editable,
        "created_at": isoformat(response.created_at),
        "updated_at": isoformat(response.updated_at),
    }


def _text(data: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"The field {name!r} must be a string.")
    return value


def _team_id(raw: Any) -> int | None:
    if raw is None:
        return None
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise InvalidInput("team_id must be a team's id.")
    return in_range(raw, "team_id")


def _response_id(request: web.Request) -> int:
    return whole_number(request.match_info["id"], "The canned response's id")


async def _fields(request: web.Request) -> dict[str, Any]:
    """A POST's or PUT's body: every field of a canned response."""
    data = await json_body(request)
    return {"scope": _text(data, "scope", required=True),
            "team_id": _team_id(data.get("team_id")),
            "title": _text(data, "title", required=True),
            "text": _text(data, "text", required=True),
            "shortcut": _text(data, "shortcut", required=False)}


@routes.get("/api/v1/canned-responses")
@needs(Scope.SESSIONS_READ)
async def list_canned(request: web.Request) -> web.Response:
    technician = await current_technician(request)
    team = request.query.get("team_id")
    found = await get_broker(request.app).canned.usable(
        technician, query=request.query.get("q") or None,
        scope=request.query.get("scope") or None,
        team_id=whole_number(team, "team_id") if team else None)
    return web.json_response({
        "canned_responses": [canned_json(listed) for listed in found],
        "placeholders": [{"placeholder": name, "meaning": meaning}
                         for name, meaning in PLACEHOLDERS.items()]})


@routes.post("/api/v1/canned-responses")
@needs(Scope.SESSIONS_WRITE)
async def add_canned(request: web.Request) -> web.Response:
    technician = await current_technician(request)
    listed = await get_broker(request.app).canned.add(technician, **await _fields(request))
    return web.json_response(canned_json(listed), status=201)


@routes.put("/api/v1/canned-responses/{id}")
@needs(Scope.SESSIONS_WRITE)
async def replace_canned(request: web.Request) -> web.Response:
    technician = await current_technician(request)
    listed = await get_broker(request.app).canned.replace(
        technician, _response_id(request), **await _fields(request))
    return web.json_response(canned_json(listed))


@routes.delete("/api/v1/canned-responses/{id}")
@needs(Scope.SESSIONS_WRITE)
async def remove_canned(request: web.Request) -> web.Response:
    technician = await current_technician(request)
    await get_broker(request.app).canned.remove(technician, _response_id(request))
    return web.Response(status=204)


@routes.get("/api/v1/me/preferences")
@needs(Scope.SESSIONS_READ)
async def my_preferences(request: web.Request) -> web.Response:
    technician = await current_technician(request)
    preferences = await get_broker(request.app).preferences.get(technician.id)
    return web.json_response(preferences.as_json())


@routes.put("/api/v1/me/preferences")
@needs(Scope.SESSIONS_WRITE)
async def change_my_preferences(request: web.Request) -> web.Response:
    technician = await current_technician(request)
    changes = await json_body(request)
    preferences = await get_broker(request.app).preferences.change(technician.id, changes)
    return web.json_response(preferences.as_json())
