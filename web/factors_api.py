"""The API of second factors: a technician's own (read only: changing them takes the
browser and a fresh sign-in), the policy, and admins resetting a technician's factors.
With an API token every route needs the `admin` scope (credentials).
`docs/api.md` documents every route."""

from __future__ import annotations

from aiohttp import web

from broker.clock import isoformat
from broker.errors import InvalidInput
from broker.factors import Requirement
from broker.technicians import Scope

from .api import json_body
from .auth import current_technician
from .handoff import admin
from .scopes import needs
from .state import get_broker
from .technicians import technician_entry, technician_id_param

routes = web.RouteTableDef()


@routes.get("/api/v1/me/factors")
@needs(Scope.ADMIN)
async def my_factors(request: web.Request) -> web.Response:
    technician = await current_technician(request)
    factors = get_broker(request.app).factors
    status = await factors.status(technician)
    return web.json_response({
        "totp": status.totp, "recovery_codes_left": status.recovery_codes_left,
        "passkeys": [{"id": p.id, "name": p.name, "created_at": isoformat(p.created_at),
                      "last_used_at": None if p.last_used_at is None
                      else isoformat(p.last_used_at)} for p in status.passkeys],
        "required": (await factors.requirement()).applies_to(technician)})


@routes.get("/api/v1/factor-policy")
@needs(Scope.ADMIN)
async def policy(request: web.Request) -> web.Response:
    await admin(request)
    required = await get_broker(request.app).factors.requirement()
    return web.json_response({"required": required.value})


@routes.put("/api/v1/factor-policy")
@needs(Scope.ADMIN)
async def set_policy(request: web.Request) -> web.Response:
    by = await admin(request)
    data = await json_body(request)
    value = data.get("required")
    if not isinstance(value, str) or value not in {r.value for r in Requirement}:
        raise InvalidInput("'required' is one of: off, admins, everyone.")
    await get_broker(request.app).factors.set_requirement(by, Requirement(value))
    return web.json_response({"required": value})


@routes.post("/api/v1/technicians/{technician_id}/factors/reset")
@needs(Scope.ADMIN)
async def reset_factors(request: web.Request) -> web.Response:
    by = await admin(request)
    broker = get_broker(request.app)
    technician = await broker.technicians.get(technician_id_param(request))
    await broker.factors.reset(by, technician)
    return web.json_response(await technician_entry(broker, by, technician.id))
