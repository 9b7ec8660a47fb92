"""The post-session survey's routes: admins set the questions, a session's end user
answers them once after the end, its technicians read the answers (broker/survey)."""

from __future__ import annotations

from aiohttp import web

from broker.credentials import is_participant_token
from broker.errors import Forbidden
from broker.sessions import Access
from broker.technicians import Scope

from .api import json_body, session_for_technician
from .auth import bearer_token, current_technician
from .handoff import admin
from .scopes import NO_TOKEN, needs
from .state import CATALOGS, get_broker

routes = web.RouteTableDef()


@routes.get("/api/v1/survey")
@needs(Scope.SESSIONS_READ)
async def get_survey(request: web.Request) -> web.Response:
    await current_technician(request)
    config = await get_broker(request.app).survey.config()
    return web.json_response(config.to_json())


@routes.put("/api/v1/survey")
@needs(Scope.ADMIN)
async def put_survey(request: web.Request) -> web.Response:
    await admin(request)
    config = await get_broker(request.app).survey.set_config(await json_body(request))
    return web.json_response(config.to_json())


@routes.post("/api/v1/sessions/{session_id}/survey")
@needs(NO_TOKEN)
async def answer_survey(request: web.Request) -> web.Response:
    """The end user's answers (their participant token), once, after the session ended;
    in the language of their page."""
    token = bearer_token(request)
    if not is_participant_token(token):
        await current_technician(request)  # 401 without a credential
        raise Forbidden("Only the session's end user answers its survey.")
    language = request.app[CATALOGS].negotiate(request)
    response = await get_broker(request.app).survey.submit(
        request.match_info["session_id"], token, await json_body(request), language)
    return web.json_response(response.to_json(), status=201)


@routes.get("/api/v1/sessions/{session_id}/survey")
@needs(Scope.SESSIONS_READ)
async def read_survey(request: web.Request) -> web.Response:
    session, _ = await session_for_technician(request, Access.CANDIDATE)
    found = await get_broker(request.app).survey.response(session.id)
    return web.json_response({"survey": None if found is None else found.to_json()})
