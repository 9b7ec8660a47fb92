"""The handoff API: technicians and teams, transfers and queues, collaborators, notes,
logins (seats). `docs/api.md` documents every route."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.clock import isoformat
from broker.errors import Forbidden, InvalidInput
from broker.inputs import in_range, whole_number
from broker.sessions import Access
from broker.technicians import Ending, Scope, Technician

from .api import json_body
from .auth import current_technician
from .scopes import needs
from .state import get_broker
from .views import handoff_json, request_json, session_json, team_json

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
    return in_range(value, name)


def _path_int(request: web.Request, name: str) -> int:
    return whole_number(request.match_info[name], name)


@routes.get("/api/v1/teams")
@needs(Scope.SESSIONS_READ)
async def list_teams(request: web.Request) -> web.Response:
    await current_technician(request)
    teams = await get_broker(request.app).teams.all()
    return web.json_response({"teams": [team_json(team) for team in teams]})


@routes.post("/api/v1/teams")
@needs(Scope.ADMIN)
async def create_team(request: web.Request) -> web.Response:
    await admin(request)
    data = await json_body(request)
    name = data.get("name")
    if not isinstance(name, str):
        raise InvalidInput("The field 'name' is required.")
    return web.json_response(team_json(await get_broker(request.app).teams.create(name)),
                             status=201)


@routes.post("/api/v1/teams/{team_id}/members")
@needs(Scope.ADMIN)
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
@needs(Scope.ADMIN)
async def remove_member(request: web.Request) -> web.Response:
    await admin(request)
    team = await get_broker(request.app).teams.remove_member(
        _path_int(request, "team_id"), _path_int(request, "technician_id"))
    return web.json_response(team_json(team))


@routes.patch("/api/v1/teams/{team_id}/members/{technician_id}")
@needs(Scope.ADMIN)
async def change_member(request: web.Request) -> web.Response:
    """Make a member the team's lead (`{"lead": true}`), or no longer."""
    await admin(request)
    lead = (await json_body(request)).get("lead")
    if not isinstance(lead, bool):
        raise InvalidInput("The field 'lead' must be true or false.")
    team = await get_broker(request.app).teams.set_lead(
        _path_int(request, "team_id"), _path_int(request, "technician_id"), lead)
    return web.json_response(team_json(team))


@routes.post("/api/v1/sessions/{session_id}/transfer")
@needs(Scope.SESSIONS_WRITE)
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
@needs(Scope.SESSIONS_READ)
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
@needs(Scope.SESSIONS_READ)
async def my_handoffs(request: web.Request) -> web.Response:
    """Transfers offered to me and sessions waiting in my teams' queues."""
    broker = get_broker(request.app)
    technician = await current_technician(request)
    now = broker.clock.now()
    pending = [handoff_json(await broker.handoffs.notice(h), now)
               for h in await broker.handoffs.pending_for(technician)]
    return web.json_response({"handoffs": pending})


@routes.post("/api/v1/handoffs/{handoff_id}/accept")
@needs(Scope.SESSIONS_WRITE)
async def accept(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    technician = await current_technician(request)
    session = await broker.handoffs.accept(request.match_info["handoff_id"], technician)
    return web.json_response(session_json(session))


@routes.post("/api/v1/handoffs/{handoff_id}/decline")
@needs(Scope.SESSIONS_WRITE)
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
@needs(Scope.SESSIONS_WRITE)
async def cancel(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    technician = await current_technician(request)
    handoff = await broker.handoffs.cancel(request.match_info["handoff_id"], technician)
    return web.json_response(handoff_json(await broker.handoffs.notice(handoff),
                                          broker.clock.now()))


@routes.get("/api/v1/queues")
@needs(Scope.SESSIONS_READ)
async def queues(request: web.Request) -> web.Response:
    """My teams' queues (admins: all) with their waiting sessions, in order of their due
    times: a customer's request's first-response target (with its form's values under
    `request`), a transfer's deadline, else when it was queued."""
    broker = get_broker(request.app)
    technician = await current_technician(request)
    now = broker.clock.now()
    result = []
    for team, waiting in await broker.handoffs.queues(technician):
        requests = await broker.intake.of_sessions([h.session_id for h in waiting])
        items = []
        for handoff in waiting:
            found = requests.get(handoff.session_id)
            due = found.due_at if found else handoff.deadline or handoff.created_at
            # Equal due times: by arrival, as the customers' places are counted.
            order = (due, found.created_at, found.id) if found else (
                due, handoff.created_at, handoff.id)
            items.append((order, {
                **handoff_json(await broker.handoffs.notice(handoff, team=team), now),
                "due_at": _iso(due), "request": request_json(found, now) if found else None}))
        items.sort(key=lambda item: item[0])
        result.append({**team_json(team), "waiting": [item for _, item in items]})
    return web.json_response({"queues": result})


@routes.get("/api/v1/sessions/{session_id}/notes")
@needs(Scope.SESSIONS_READ)
async def get_notes(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    technician = await current_technician(request)
    notes = await broker.sessions.notes(request.match_info["session_id"], technician)
    return web.json_response({"notes": notes})


@routes.put("/api/v1/sessions/{session_id}/notes")
@needs(Scope.SESSIONS_WRITE)
async def put_notes(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    technician = await current_technician(request)
    notes = (await json_body(request)).get("notes")
    if not isinstance(notes, str):
        raise InvalidInput("The field 'notes' must be a string.")
    saved = await broker.sessions.set_notes(request.match_info["session_id"], technician, notes)
    return web.json_response({"notes": saved})


@routes.post("/api/v1/sessions/{session_id}/collaborators")
@needs(Scope.SESSIONS_WRITE)
async def invite(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    technician = await current_technician(request)
    guest = _int(await json_body(request), "technician_id")
    if guest is None:
        raise InvalidInput("The field 'technician_id' is required.")
    session = await broker.handoffs.invite(request.match_info["session_id"], technician, guest)
    return web.json_response(session_json(session))


@routes.delete("/api/v1/sessions/{session_id}/collaborators/me")
@needs(Scope.SESSIONS_WRITE)
async def leave(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    technician = await current_technician(request)
    await broker.handoffs.leave(request.match_info["session_id"], technician)
    return web.Response(status=204)


@routes.get("/api/v1/logins")
@needs(Scope.ADMIN)
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
@needs(Scope.ADMIN)
async def end_login(request: web.Request) -> web.Response:
    await admin(request)
    await get_broker(request.app).logins.end(request.match_info["login_id"],
                                             Ending.ENDED_BY_ADMIN,
                                             by_admin=True)
    return web.Response(status=204)


def _iso(value: float) -> str:
    return isoformat(value)
