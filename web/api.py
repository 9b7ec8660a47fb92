"""The JSON API under /api/v1. `docs/api.md` documents every route with curl examples."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy

from broker.credentials import is_participant_token
from broker.delivery.service import STATUS_CALLBACK_PATH
from broker.errors import KEY_MALFORMED, Forbidden, InvalidInput, KeyRejected, NotFound
from broker.inputs import BAD_TEXT, is_text, parse_json, whole_number
from broker.keys import format_code
from broker.sessions import Access, Actor, Role, Session
from broker.sessions.history import HistoryQuery
from broker.technicians import Scope

from . import transcript
from .auth import bearer_token, client_address, current_technician
from .scopes import NO_TOKEN, needs
from .state import get_broker
from .views import delivery_json, event_json, session_json

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    # The bytes, not request.json(): JSON is UTF-8 whatever charset the client declares.
    data = parse_json(await request.read())
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object.", code="bad_json")
    return data


async def form_body(request: web.Request) -> MultiDictProxy[Any]:
    """The form fields of a page's POST (or a webhook's)."""
    try:
        form = await request.post()
    except (ValueError, LookupError) as exc:  # not text in its charset, or no such charset
        raise InvalidInput("The form is not valid text.") from exc
    if not all(is_text(name) and (not isinstance(value, str) or is_text(value))
               for name, value in form.items()):
        raise InvalidInput(BAD_TEXT, code="bad_text")
    return form


def _string(data: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidInput(f"The field {name!r} is required.")
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"The field {name!r} must be a string.")
    return value


async def session_for_caller(request: web.Request,
                             need: Access = Access.COLLABORATOR) -> tuple[Session, Actor]:
    """The session in the path and who is asking: its participant, or a technician with
    at least `need` access to it."""
    token = bearer_token(request)
    if is_participant_token(token):
        broker = get_broker(request.app)
        return await broker.sessions.for_participant(request.match_info["session_id"], token)
    return await _technician_session(request, need)


async def session_for_technician(request: web.Request,
                                 need: Access = Access.OWNER) -> tuple[Session, Actor]:
    broker = get_broker(request.app)
    token = bearer_token(request)
    if is_participant_token(token):
        await broker.sessions.participant(token)  # 401 if it is no credential at all
        raise Forbidden("Only the session's technician may do this.")
    return await _technician_session(request, need)


async def _technician_session(request: web.Request, need: Access) -> tuple[Session, Actor]:
    """The session in the path, for the logged-in technician with at least `need` access."""
    broker = get_broker(request.app)
    technician = await current_technician(request)
    session = await broker.sessions.for_technician(request.match_info["session_id"], technician,
                                                   need)
    return session, broker.sessions.technician_actor(technician)


@routes.post("/api/v1/sessions")
@needs(Scope.SESSIONS_WRITE)
async def start_session(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    technician = await current_technician(request)
    data = await json_body(request)
    lifetime = data.get("key_lifetime_seconds")
    if lifetime is not None and (not isinstance(lifetime, int) or isinstance(lifetime, bool)):
        raise InvalidInput("key_lifetime_seconds must be a whole number.")
    session, key = await broker.sessions.start(technician, lifetime)
    body = session_json(session)
    body.update({"key": format_code(key.code), "join_url": join_url(request, key.token),
                 "expires_at": body["key_expires_at"]})
    return web.json_response(body, status=201)


def join_url(request: web.Request, token: str) -> str:
    return f"{get_broker(request.app).settings.base_url}/j/{token}"


@routes.get("/api/v1/sessions")
@needs(Scope.SESSIONS_READ)
async def list_sessions(request: web.Request) -> web.Response:
    """History: the sessions the technician owned or took part in (admins: anyone's),
    searched and filtered, newest first, a page at a time."""
    broker = get_broker(request.app)
    technician = await current_technician(request)
    page = await broker.history.page(technician, HistoryQuery.parse(request.query))
    return web.json_response({"sessions": [session_json(s) for s in page.sessions],
                              "next_cursor": page.next_cursor})


@routes.get("/api/v1/sessions/{session_id}")
@needs(Scope.SESSIONS_READ)
async def get_session_view(request: web.Request) -> web.Response:
    """The session; its owner and admins also get the live key and join link, so that
    any of their browsers can show and send them."""
    session, actor = await session_for_caller(request, Access.CANDIDATE)
    body = session_json(session)
    if actor.role is Role.TECHNICIAN and (
            actor.id == session.technician_id
            or (await current_technician(request)).is_admin):
        key = await get_broker(request.app).sessions.live_key(session.id)
        if key is not None:
            body.update({"key": format_code(key.code), "join_url": join_url(request, key.token)})
    return web.json_response(body)


@routes.get("/api/v1/sessions/{session_id}/events")
@needs(Scope.SESSIONS_READ)
async def list_events(request: web.Request) -> web.Response:
    # A technician offered the session reads the transcript before accepting.
    session, _ = await session_for_caller(request, Access.CANDIDATE)
    after = whole_number(request.query.get("after", "0"), "after")
    limit = whole_number(request.query.get("limit", "1000"), "limit")
    events = await get_broker(request.app).sessions.events_after(session.id, after, limit)
    return web.json_response({"events": [event_json(e) for e in events]})


@routes.post("/api/v1/sessions/{session_id}/messages")
@needs(Scope.SESSIONS_WRITE)
async def post_message(request: web.Request) -> web.Response:
    session, actor = await session_for_caller(request)
    data = await json_body(request)
    text = _string(data, "text", required=True) or ""
    seq, duplicate = await get_broker(request.app).sessions.post_message(
        session.id, actor, text, _string(data, "client_id"))
    return web.json_response({"seq": seq}, status=200 if duplicate else 201)


@routes.post("/api/v1/sessions/{session_id}/end")
@needs(Scope.SESSIONS_WRITE)
async def end_session(request: web.Request) -> web.Response:
    session, actor = await session_for_technician(request)
    ended = await get_broker(request.app).sessions.end(session.id, actor, "ended_by_technician")
    return web.json_response(session_json(ended))


@routes.post("/api/v1/sessions/{session_id}/revoke")
@needs(Scope.SESSIONS_WRITE)
async def revoke_key(request: web.Request) -> web.Response:
    session, actor = await session_for_technician(request)
    ended = await get_broker(request.app).sessions.revoke_key(session.id, actor)
    return web.json_response(session_json(ended))


@routes.get("/api/v1/sessions/{session_id}/transcript")
@needs(Scope.SESSIONS_READ)
async def export_transcript(request: web.Request) -> web.StreamResponse:
    """The readable transcript (web/transcript.py) as a file, in the reader's language
    and time zone (`?lang=`, `?tz=`, or what the browser's cookies say); for whoever may
    read it, also after handing the session over or leaving it."""
    technician = await current_technician(request)
    readable = await transcript.load(request, get_broker(request.app),
                                     request.match_info["session_id"], technician)
    session = readable.session
    kind = request.query.get("format", "text")
    if kind not in ("text", "html"):
        raise InvalidInput("format must be 'text' or 'html'.")
    template = "transcript.txt" if kind == "text" else "transcript.html"
    response = aiohttp_jinja2.render_template(template, request, transcript.context(readable))
    response.content_type = "text/plain" if kind == "text" else "text/html"
    response.charset = "utf-8"
    filename = f"transcript-{session.id}.{'txt' if kind == 'text' else 'html'}"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


async def redeem(request: web.Request, *, code: str | None, token: str | None,
                 name: str | None) -> Any:
    """Redeem a key under the guessing limits; shared by the API and the join form."""
    broker = get_broker(request.app)
    client = client_address(request, broker.settings.trust_forwarded_for)
    typed = token is None  # link tokens are unguessable: only typed codes count globally
    async with broker.redeem_limiter.attempt(client, include_global=typed) as attempt:
        try:
            return await broker.sessions.redeem(code=code, token=token, name=name)
        except KeyRejected as rejected:
            if rejected.code != KEY_MALFORMED:
                attempt.fail()
            raise


@routes.post("/api/v1/join")
@needs(NO_TOKEN)
async def join(request: web.Request) -> web.Response:
    data = await json_body(request)
    code, token = _string(data, "key"), _string(data, "token")
    if code is None and token is None:
        raise KeyRejected("Send 'key' (the nine digits) or 'token' (from the join link).",
                          code=KEY_MALFORMED)
    redemption = await redeem(request, code=code, token=token, name=_string(data, "name"))
    session = redemption.session
    return web.json_response({
        "session_id": redemption.session_id,
        "participant_token": redemption.participant_token,
        "technician_name": session.technician_name,
        "name": redemption.actor.name,
        "ws_url": f"/api/v1/sessions/{redemption.session_id}/ws",
    })


@routes.post("/api/v1/sessions/{session_id}/deliveries")
@needs(Scope.DELIVERIES)
async def send_key(request: web.Request) -> web.Response:
    """Queue the session's key for sending by SMS or email; the worker sends it."""
    broker = get_broker(request.app)
    technician = await current_technician(request)
    session = await broker.sessions.for_technician(request.match_info["session_id"], technician,
                                                   Access.OWNER)
    data = await json_body(request)
    delivery = await broker.deliveries.request(
        session, technician, _string(data, "channel", required=True) or "",
        _string(data, "to", required=True) or "", _string(data, "language"))
    return web.json_response(delivery_json(delivery), status=202)


@routes.get("/api/v1/sessions/{session_id}/deliveries")
@needs(Scope.DELIVERIES)
async def list_deliveries(request: web.Request) -> web.Response:
    session, _ = await session_for_technician(request, Access.COLLABORATOR)
    found = await get_broker(request.app).deliveries.for_session(session.id)
    return web.json_response({"deliveries": [delivery_json(d) for d in found]})


@routes.post(STATUS_CALLBACK_PATH)
@needs(NO_TOKEN)
async def twilio_status_callback(request: web.Request) -> web.Response:
    """Twilio's status callbacks, accepted only with a valid X-Twilio-Signature."""
    from twilio.request_validator import RequestValidator

    broker = get_broker(request.app)
    settings = broker.settings
    form = {k: str(v) for k, v in (await form_body(request)).items()}
    if not settings.twilio_auth_token:
        raise NotFound("Twilio is not configured.")
    url = settings.base_url + request.path_qs
    signature = request.headers.get("X-Twilio-Signature", "")
    if not RequestValidator(settings.twilio_auth_token).validate(url, form, signature):
        log.warning("refused a Twilio status callback with a bad signature from %s",
                    client_address(request, settings.trust_forwarded_for))
        raise Forbidden("The request signature is not valid.", code="bad_signature")
    await broker.deliveries.twilio_status(form)
    return web.Response(status=204)
