"""Technicians: the roster everyone sees (the transfer picker), and their administration
(admins). `docs/api.md` documents every route."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.clock import isoformat
from broker.core import Broker
from broker.errors import InvalidInput, NotFound
from broker.inputs import whole_number
from broker.technicians import Scope, Technician

from .api import json_body
from .auth import current_technician
from .handoff import admin
from .scopes import needs
from .state import get_broker

routes = web.RouteTableDef()


async def _listing(broker: Broker, viewer: Technician) -> list[dict[str, Any]]:
    """Every technician with presence and teams, online first; admins also see the account
    fields (and disabled technicians, whom nobody else is offered)."""
    entries = await broker.handoffs.roster()
    team_ids: dict[int, list[int]] = {}
    lead_ids: dict[int, list[int]] = {}
    with_factors: set[int] = set()
    if viewer.is_admin:
        with_factors = await broker.factors.store.with_factors()
        for team in await broker.teams.all():
            for member in team.member_ids:
                team_ids.setdefault(member, []).append(team.id)
            for lead in team.lead_ids:
                lead_ids.setdefault(lead, []).append(team.id)
    listing = []
    for technician, availability, teams in entries:
        if technician.disabled and not viewer.is_admin:
            continue
        entry: dict[str, Any] = {
            "id": technician.id, "name": technician.display_name,
            "is_admin": technician.is_admin, "presence": availability.value, "teams": teams}
        if viewer.is_admin:
            entry.update({
                "email": technician.email, "disabled": technician.disabled,
                "disabled_at": None if technician.disabled_at is None
                else isoformat(technician.disabled_at),
                "must_change_password": technician.must_change_password,
                "second_factor": technician.id in with_factors,
                "team_ids": team_ids.get(technician.id, []),
                "lead_team_ids": lead_ids.get(technician.id, []),
                "created_at": isoformat(technician.created_at)})
        listing.append(entry)
    return listing


async def technician_entry(broker: Broker, viewer: Technician,
                           technician_id: int) -> dict[str, Any]:
    for entry in await _listing(broker, viewer):
        if entry["id"] == technician_id:
            return entry
    raise NotFound("No such technician.")


def _flag(data: dict[str, Any], name: str) -> bool | None:
    value = data.get(name)
    if value is not None and not isinstance(value, bool):
        raise InvalidInput(f"The field {name!r} must be true or false.")
    return value


def _text(data: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"The field {name!r} must be a string.")
    return value


def technician_id_param(request: web.Request) -> int:
    return whole_number(request.match_info["technician_id"], "technician_id")


@routes.get("/api/v1/technicians")
@needs(Scope.SESSIONS_READ)
async def roster(request: web.Request) -> web.Response:
    viewer = await current_technician(request)
    return web.json_response({"technicians": await _listing(get_broker(request.app), viewer)})


@routes.post("/api/v1/technicians")
@needs(Scope.ADMIN)
async def add_technician(request: web.Request) -> web.Response:
    by = await admin(request)
    broker = get_broker(request.app)
    data = await json_body(request)
    technician, password = await broker.accounts.create(
        by, _text(data, "email", required=True) or "", _text(data, "name", required=True) or "",
        admin=_flag(data, "admin") or False)
    entry = await technician_entry(broker, by, technician.id)
    return web.json_response({**entry, "one_time_password": password}, status=201)


@routes.patch("/api/v1/technicians/{technician_id}")
@needs(Scope.ADMIN)
async def change_technician(request: web.Request) -> web.Response:
    by = await admin(request)
    broker = get_broker(request.app)
    data = await json_body(request)
    technician = await broker.accounts.update(
        by, technician_id_param(request), name=_text(data, "name"),
        admin=_flag(data, "admin"), disabled=_flag(data, "disabled"))
    return web.json_response(await technician_entry(broker, by, technician.id))


@routes.post("/api/v1/technicians/{technician_id}/password-reset")
@needs(Scope.ADMIN)
async def reset_password(request: web.Request) -> web.Response:
    by = await admin(request)
    broker = get_broker(request.app)
    technician, password = await broker.accounts.reset_password(
        by, technician_id_param(request))
    return web.json_response({**await technician_entry(broker, by, technician.id),
                              "one_time_password": password})
