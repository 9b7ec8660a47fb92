"""The handoff API: technicians and teams, transfers and queues, collaborators, notes,
logins (seats). `docs/api.md` documents every route."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.clock import isoformat
from broker.errors import Forbidden, InvalidInput
from broker.sessions import Access
from broker.technicians import Technician

from .api import json_body
from .auth import current_technician
from .state import get_broker
from .views import handoff_json, session_json, team_json

routes = web.RouteTableDef()


async def admin(request: web.Request) -> Technician:
    technician = await current_technician(request)
    if not technician.is_admin:
        raise Forbidden("Only admins can do this.")
    return technician


def _int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"The field {name!r} must be a whole number.")
    return value


def _path_int(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a number.") from exc


@routes.get("/api/v1/technicians")
async def roster(request: web.Request) -> web.Response:
    """Every technician with presence (online, away, offline) and teams, online first."""
    await current_technician(request)
    entries = await get_broker(request.app).handoffs.roster()
    return web.json_response({"technicians": [
        {"id": t.id, "name": t.display_name, "is_admin": t.is_admin, "presence": p.value,
         "teams": teams} for t, p, teams in entries]})


@routes.get("/api/v1/teams")
async def list_teams(request: web.Request) -> web.Response:
    await current_technician(request)
    teams = await get_broker(request.app).teams.all()
    return web.json_response({"teams": [team_json(team) for team in teams]})


@routes.post("/api/v1/teams")
async def create_team(request: web.Request) -> web.Response:
    await admin(request)
    data = await json_body(request)
    name = data.get("name")
    if not isinstance(name, str):
        raise InvalidInput("The field 'name' is required.")
    return web.json_response(team_json(await get_broker(request.app).teams.create(name)),
                             status=201)


@routes.post("/api/v1/teams/{team_id}/members")
async def add_member(request: web.Request) -> web.Response:
    await admin(request)
    broker = get_broker(request.app)
    technician_id = _int(await json_body(request), "technician_id")
    if technician_id is None:
        raise InvalidInput("The field 'technician_id' is required.")
    await broker.technicians.get(technician_id)
    team = await broker.teams.add_member(_path_int(request, "team_id"), technician_id)
    return web.json_response(team_json(team))


@routes.delete("/api/v1/teams/{team_id}/members/{technician_id}")
async def remove_member(request: web.Request) -> web.Response:
    await admin(request)
    team = await get_broker(request.app).teams.remove_member(
        _path_int(request, "team_id"), _path_int(request, "technician_id"))
    return web.json_response(team_json(team))


@routes.post("/api/v1/sessions/{session_id}/transfer")
async def transfer(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    technician = await current_technician(request)
    data = await json_body(request)
    note = data.get("note")
    keep = data.get("keep_sender", False)
    if not isinstance(note, str):
        raise InvalidInput("A transfer needs a note for the receiver.", code="note_required")
    if not isinstance(keep, bool):
        raise InvalidInput("keep_sender must be true or false.")
    handoff = await broker.handoffs.transfer(
        request.match_info["session_id"], technician, note=note, keep_sender=keep,
        to_technician_id=_int(data, "to_technician_id"), to_team_id=_int(data, "to_team_id"))
    return web.json_response(handoff_json(await broker.handoffs.notice(handoff),
                                          broker.clock.now()), status=201)


@routes.get("/api/v1/sessions/{session_id}/handoffs")
async def session_handoffs(request: web.Request) -> web.Response:
    """The transfer history of a session (its technicians and admins)."""
    broker = get_broker(request.app)
    technician = await current_technician(request)
    session = await broker.sessions.for_technician(request.match_info["session_id"], technician,
                                                   Access.COLLABORATOR)
    now = broker.clock.now()
    history = [handoff_json(await broker.handoffs.notice(h, session=session), now)
               for h in await broker.handoffs.history(session.id)]
    return web.json_response({"handoffs": history})


@routes.get("/api/v1/handoffs")
async def my_handoffs(request: web.Request) -> web.Response:
    """Transfers offered to me and sessions waiting in my teams' queues."""
    broker = get_broker(request.app)
    technician = await current_technician(request)
    now = broker.clock.now()
    pending = [handoff_json(await broker.handoffs.notice(h), now)
               for h in await broker.handoffs.pending_for(technician)]
    return web.json_response({"handoffs": pending})


@routes.post("/api/v1/handoffs/{handoff_id}/accept")
async def accept(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    technician = await current_technician(request)
    session = await broker.handoffs.accept(request.match_info["handoff_id"], technician)
    return web.json_response(session_json(session))


@routes.post("/api/v1/handoffs/{handoff_id}/decline")
async def decline(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    technician = await current_technician(request)
    reason = (await json_body(request)).get("reason", "")
    if not isinstance(reason, str):
        raise InvalidInput("reason must be a string.")
    handoff = await broker.handoffs.decline(request.match_info["handoff_id"], technician,
                                            reason)
    return web.json_response(handoff_json(await broker.handoffs.notice(handoff),
                                          broker.clock.now()))


@routes.post("/api/v1/handoffs/{handoff_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    technician = await current_technician(request)
    handoff = await broker.handoffs.cancel(request.match_info["handoff_id"], technician)
    return web.json_response(handoff_json(await broker.handoffs.notice(handoff),
                                          broker.clock.now()))


@routes.get("/api/v1/queues")
async def queues(request: web.Request) -> web.Response:
    """My teams' queues (admins: all) with their waiting sessions, longest waiting first."""
    broker = get_broker(request.app)
    technician = await current_technician(request)
    now = broker.clock.now()
    result = []
    for team, waiting in await broker.handoffs.queues(technician):
        result.append({**team_json(team), "waiting": [
            handoff_json(await broker.handoffs.notice(h, team=team), now) for h in waiting]})
    return web.json_response({"queues": result})


@routes.get("/api/v1/sessions/{session_id}/notes")
async def get_notes(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    technician = await current_technician(request)
    notes = await broker.handoffs.notes(request.match_info["session_id"], technician)
    return web.json_response({"notes": notes})


@routes.put("/api/v1/sessions/{session_id}/notes")
async def put_notes(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    technician = await current_technician(request)
    notes = (await json_body(request)).get("notes")
    if not isinstance(notes, str):
        raise InvalidInput("The field 'notes' must be a string.")
    saved = await broker.handoffs.set_notes(request.match_info["session_id"], technician, notes)
    return web.json_response({"notes": saved})


@routes.post("/api/v1/sessions/{session_id}/collaborators")
async def invite(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    technician = await current_technician(request)
    guest = _int(await json_body(request), "technician_id")
    if guest is None:
        raise InvalidInput("The field 'technician_id' is required.")
    session = await broker.handoffs.invite(request.match_info["session_id"], technician, guest)
    return web.json_response(session_json(session))


@routes.delete("/api/v1/sessions/{session_id}/collaborators/me")
async def leave(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    technician = await current_technician(request)
    await broker.handoffs.leave(request.match_info["session_id"], technician)
    return web.Response(status=204)


@routes.get("/api/v1/logins")
async def list_logins(request: web.Request) -> web.Response:
    """Who holds a seat now (admins)."""
    broker = get_broker(request.app)
    await admin(request)
    return web.json_response({"seats": broker.settings.seats, "logins": [
        {"login_id": login.id, "technician": {"id": login.technician_id,
                                              "name": login.technician_name},
         "created_at": _iso(login.created_at), "last_seen_at": _iso(login.last_seen_at)}
        for login in await broker.logins.active()]})


@routes.post("/api/v1/logins/{login_id}/end")
async def end_login(request: web.Request) -> web.Response:
    await admin(request)
    await get_broker(request.app).logins.end(request.match_info["login_id"], "ended_by_admin",
                                             by_admin=True)
    return web.Response(status=204)


def _iso(value: float) -> str:
    return isoformat(value)
