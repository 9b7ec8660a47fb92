"""Customers who start the contact (broker/intake): the pre-chat form, availability,
requests, messages, and the `queue.ask` frame. `docs/api.md` documents every route,
docs/portal.md the flow."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from broker.credentials import is_participant_token
from broker.errors import Forbidden, InvalidInput
from broker.inputs import whole_number
from broker.intake import RequestKind, RequestStatus
from broker.intake.form import FieldInvalid, FormConfig
from broker.intake.service import slug
from broker.protocol.queue import QueueAsk
from broker.sessions import Access, Role
from broker.technicians import Scope

from . import ws
from .api import join_url, json_body, session_for_caller
from .auth import bearer_token, client_address, current_technician
from .handoff import admin
from .i18n import LANGUAGES
from .pages import FILES_COOKIE, PARTICIPANT_COOKIE
from .scopes import NO_TOKEN, needs
from .state import CATALOGS, get_broker
from .views import delivery_json, request_json, session_json, team_json

routes = web.RouteTableDef()


def _language(request: web.Request) -> str:
    return request.app[CATALOGS].negotiate(request)


async def _form_json(request: web.Request, config: FormConfig) -> dict[str, Any]:
    """The form, and the teams a customer can choose from (their names and slugs)."""
    teams = await get_broker(request.app).teams.all()
    return {**config.to_json(), "teams": [
        {"team_id": team.id, "name": team.name, "slug": slug(team.name)} for team in teams]}


@routes.get("/api/v1/intake-form")
@needs(NO_TOKEN)
async def get_form(request: web.Request) -> web.Response:
    """The pre-chat form (public: the portal renders it), with the severities' targets."""
    config = await get_broker(request.app).intake.form()
    return web.json_response(await _form_json(request, config))


@routes.put("/api/v1/intake-form")
@needs(Scope.ADMIN)
async def put_form(request: web.Request) -> web.Response:
    await admin(request)
    config = await get_broker(request.app).intake.set_form(await json_body(request))
    return web.json_response(await _form_json(request, config))


@routes.get("/api/v1/availability")
@needs(NO_TOKEN)
async def availability(request: web.Request) -> web.Response:
    """Whether anyone of the team is online, and the expected wait (public, cacheable)."""
    broker = get_broker(request.app)
    team = await broker.intake.team(request.query.get("team"))
    found = await broker.intake.availability(team)
    seconds = round(broker.settings.availability_cache_seconds)
    return web.json_response(
        {"online": found.online, "estimated_wait_seconds": found.estimated_wait_seconds},
        headers={"Cache-Control": f"public, max-age={seconds}"})


@routes.post("/api/v1/requests")
@needs(NO_TOKEN)
async def submit(request: web.Request) -> web.Response:
    """A customer's pre-chat form (public): a chat in the team's queue, or a message."""
    broker = get_broker(request.app)
    values = await json_body(request)
    language = _language(request)
    try:
        submitted = await broker.intake.submit(
            values, client=client_address(request, broker.settings.trust_forwarded_for),
            language=language, default_name=request.app[CATALOGS].gettext(language)("Guest"))
    except FieldInvalid as refused:
        return web.json_response({"error": refused.code, "message": refused.message,
                                  "field": refused.field}, status=400)
    if submitted.redemption is None:
        # A message, or a bot's form (honeypot filled): the two answers look alike.
        made = submitted.request
        return web.json_response({"status": RequestStatus.UNANSWERED.value, "online": False,
                                  "request_id": made.id if made else secrets.token_urlsafe(16)},
                                 status=202)
    redemption = submitted.redemption
    session_id = redemption.session_id
    response = web.json_response({
        "status": RequestStatus.WAITING.value, "online": True,
        "request_id": submitted.request.id if submitted.request else None,
        "session_id": session_id, "participant_token": redemption.participant_token,
        "name": redemption.actor.name, "join_url": f"{broker.settings.base_url}/s/{session_id}",
        "ws_url": f"/api/v1/sessions/{session_id}/ws", "position": submitted.position,
        "estimated_wait_seconds": submitted.estimated_wait_seconds}, status=201)
    # A portal page on this site opens the chat page next: it knows the customer by these.
    secure = broker.settings.session_cookie_secure
    response.set_cookie(PARTICIPANT_COOKIE.format(session_id), redemption.participant_token,
                        httponly=True, samesite="Lax", secure=secure, path=f"/s/{session_id}")
    response.set_cookie(FILES_COOKIE.format(session_id), redemption.participant_token,
                        httponly=True, samesite="Lax", secure=secure,
                        path=f"/api/v1/sessions/{session_id}/files/")
    return response


@routes.get("/api/v1/requests")
@needs(Scope.SESSIONS_READ)
async def list_requests(request: web.Request) -> web.Response:
    """Requests of my teams (admins: all), newest first; ?team=<id>, ?kind=chat|message."""
    broker = get_broker(request.app)
    technician = await current_technician(request)
    team = request.query.get("team")
    kind = request.query.get("kind")
    if kind is not None and kind not in {k.value for k in RequestKind}:
        raise InvalidInput("kind is chat or message.")
    found = await broker.intake.listed(
        technician, team_id=None if team is None else whole_number(team, "team"),
        kind=None if kind is None else RequestKind(kind))
    now = broker.clock.now()
    return web.json_response({"requests": [request_json(r, now) for r in found]})


@routes.get("/api/v1/requests/{request_id}")
@needs(Scope.SESSIONS_READ)
async def get_request(request: web.Request) -> web.Response:
    """A request: to its customer (their participant token) where it stands and their
    place in the queue; to its team's technicians everything."""
    broker = get_broker(request.app)
    request_id = request.match_info["request_id"]
    token = bearer_token(request)
    if is_participant_token(token):
        found = await broker.intake.for_participant(request_id, token)
        body: dict[str, Any] = {"request_id": found.id, "status": found.status.value,
                                "session_id": found.session_id,
                                "severity": found.severity.value, "position": None,
                                "estimated_wait_seconds": None}
        if found.status is RequestStatus.WAITING:
            place = await broker.intake.queue.place(found)
            if place is not None:
                body.update(position=place.position,
                            estimated_wait_seconds=place.estimated_wait_seconds)
        return web.json_response(body)
    technician = await current_technician(request)
    found = await broker.intake.for_technician(request_id, technician)
    return web.json_response(request_json(found, broker.clock.now()))


@routes.post("/api/v1/requests/{request_id}/session")
@needs(Scope.SESSIONS_WRITE)
async def answer(request: web.Request) -> web.Response:
    """Answer a message: a new session, its key emailed to the customer."""
    broker = get_broker(request.app)
    technician = await current_technician(request)
    language = (await json_body(request)).get("language")
    if language is not None and language not in LANGUAGES:
        raise InvalidInput("language must be 'en' or 'de'.", code="invalid_language")
    session, key, delivery = await broker.intake.answer(request.match_info["request_id"],
                                                        technician, language)
    body = session_json(session)
    body.update({"join_url": join_url(request, key.token), "delivery": delivery_json(delivery)})
    return web.json_response(body, status=201)


@routes.get("/api/v1/sessions/{session_id}/request")
@needs(Scope.SESSIONS_READ)
async def session_request(request: web.Request) -> web.Response:
    """The request a session was made for, or null (its technicians, and those it is
    offered to)."""
    session, actor = await session_for_caller(request, Access.CANDIDATE)
    if actor.role is not Role.TECHNICIAN:
        raise Forbidden("The customer asks GET /api/v1/requests/{request_id}.")
    broker = get_broker(request.app)
    found = await broker.intake.of_session(session)
    return web.json_response(
        {"request": None if found is None else request_json(found, broker.clock.now())})


@routes.put("/api/v1/teams/{team_id}/message-email")
@needs(Scope.ADMIN)
async def set_message_email(request: web.Request) -> web.Response:
    """Where the team's messages go while nobody of it is online (admins)."""
    await admin(request)
    data = await json_body(request)
    address = data.get("email")
    if "email" not in data or address is not None and not isinstance(address, str):
        raise InvalidInput("email is an address or null.")
    team = await get_broker(request.app).intake.set_message_email(
        whole_number(request.match_info["team_id"], "team_id"), address)
    return web.json_response(team_json(team))


async def _ask(p: ws.Participant, message: QueueAsk) -> None:
    p.conn.send(await p.broker.intake.place(p.session.id))


def setup(app: web.Application) -> None:
    ws.get_frame_handlers(app).add(QueueAsk, _ask)
    app.add_routes(routes)
