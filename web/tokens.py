"""API tokens: a technician's own (create, list, revoke) and, for admins, everyone's; the
page where a technician manages theirs. `docs/api.md` documents the routes.

With an API token these routes need the `admin` scope, and a token creates none that
could do more than itself: no scope it lacks, no later expiry.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from broker.clock import isoformat
from broker.errors import Forbidden, InvalidInput
from broker.inputs import whole_number
from broker.technicians import ApiToken, Scope, Technician
from broker.technicians.tokens import parse_expiry, parse_scopes

from .api import json_body
from .auth import bearer_token, current_technician, token_grant
from .pages import page_technician
from .scopes import needs
from .state import get_broker

routes = web.RouteTableDef()


def token_json(token: ApiToken, owner: Technician | None, now: float) -> dict[str, Any]:
    def when(value: float | None) -> str | None:
        return None if value is None else isoformat(value)

    return {"id": token.id, "name": token.name,
            "scopes": [s.value for s in Scope if s in token.scopes],
            "technician": {"id": token.technician_id,
                           "name": owner.display_name if owner else None},
            "created_at": isoformat(token.created_at), "expires_at": when(token.expires_at),
            "expired": token.expired(now), "last_used_at": when(token.last_used_at)}


def _expiry(data: dict[str, Any], now: float) -> float | None:
    at, days = data.get("expires_at"), data.get("expires_in_days")
    if at is not None and days is not None:
        raise InvalidInput("Send expires_at or expires_in_days, not both.",
                           code="invalid_expiry")
    if at is not None:
        if not isinstance(at, str):
            raise InvalidInput("expires_at is an ISO 8601 date or time.", code="invalid_expiry")
        return parse_expiry(at, now)
    if days is not None:
        if not isinstance(days, int) or isinstance(days, bool):
            raise InvalidInput("expires_in_days is a whole number.", code="invalid_expiry")
        return parse_expiry(f"{days}d", now)
    return None


@routes.get("/api/v1/tokens")
@needs(Scope.ADMIN)
async def list_tokens(request: web.Request) -> web.Response:
    """The caller's tokens; an admin's also one technician's (?technician_id=) or
    everybody's (?all=true)."""
    broker = get_broker(request.app)
    viewer = await current_technician(request)
    raw = request.query.get("technician_id")
    everybody = request.query.get("all") == "true"
    if everybody and raw is not None:
        raise InvalidInput("Ask for one technician's tokens or for all, not both.")
    wanted = None if everybody else viewer.id if raw is None else whole_number(
        raw, "technician_id")
    found = await broker.technicians.tokens.for_viewer(viewer, wanted)
    owners = {t.id: t for t in await broker.technicians.all()} if viewer.is_admin else {
        viewer.id: viewer}
    now = broker.clock.now()
    return web.json_response({"tokens": [token_json(t, owners.get(t.technician_id), now)
                                         for t in found]})


@routes.post("/api/v1/tokens")
@needs(Scope.ADMIN)
async def create_token(request: web.Request) -> web.Response:
    """A new token of the caller's own; the answer is the only time it is shown."""
    broker = get_broker(request.app)
    technician = await current_technician(request)
    data = await json_body(request)
    names = data.get("scopes")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidInput("scopes is a list of scope names.", code="invalid_scope")
    scopes = parse_scopes(names)
    name = data.get("name", "")
    if not isinstance(name, str):
        raise InvalidInput("The field 'name' must be a string.")
    expires_at = _expiry(data, broker.clock.now())
    bearer = bearer_token(request)
    if bearer is not None:  # made with a token: never more than that token
        caller = (await token_grant(request, bearer)).token
        if not scopes <= caller.scopes:
            raise Forbidden("A token cannot create a token with scopes it lacks.",
                            code="insufficient_scope")
        if caller.expires_at is not None and (expires_at is None
                                              or expires_at > caller.expires_at):
            raise InvalidInput("A token cannot outlive the token that creates it.",
                               code="invalid_expiry")
    token, secret = await broker.technicians.tokens.create(
        technician.id, scopes, name=name, expires_at=expires_at)
    return web.json_response({**token_json(token, technician, broker.clock.now()),
                              "token": secret}, status=201)


@routes.delete("/api/v1/tokens/{token_id}")
@needs(Scope.ADMIN)
async def revoke_token(request: web.Request) -> web.Response:
    """Revoke a token: one's own, or (admins) anyone's. It answers 401 from now on."""
    broker = get_broker(request.app)
    technician = await current_technician(request)
    await broker.accounts.revoke_token(
        technician, whole_number(request.match_info["token_id"], "token_id"))
    return web.Response(status=204)


@routes.get("/tokens")
async def tokens_page(request: web.Request) -> web.Response:
    """The technician's own API tokens (web/static/tokens.js reads and changes them)."""
    technician = await page_technician(request)
    return aiohttp_jinja2.render_template("tokens.html", request, {"technician": technician})
