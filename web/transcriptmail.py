"""Transcripts by email at the edge (broker/transcriptmail): admins set the company's and
the teams' levels; a session's end user asks for a copy and confirms their address with
the code sent to it."""

from __future__ import annotations

from aiohttp import web

from broker.credentials import is_participant_token
from broker.errors import Forbidden
from broker.inputs import whole_number
from broker.technicians import Scope
from broker.transcriptmail import COMPANY, TEAM, copy_json

from .api import json_body
from .auth import bearer_token, current_technician
from .handoff import admin
from .scopes import NO_TOKEN, needs
from .state import CATALOGS, get_broker
from .transcript import zone_of

routes = web.RouteTableDef()


def _team_id(request: web.Request) -> int:
    return whole_number(request.match_info["team_id"], "team_id")


@routes.get("/api/v1/transcript-mail")
@needs(Scope.ADMIN)
async def get_company(request: web.Request) -> web.Response:
    await admin(request)
    level = await get_broker(request.app).transcript_mail.level(COMPANY)
    return web.json_response(level.to_json())


@routes.put("/api/v1/transcript-mail")
@needs(Scope.ADMIN)
async def put_company(request: web.Request) -> web.Response:
    await admin(request)
    level = await get_broker(request.app).transcript_mail.set_level(
        COMPANY, await json_body(request))
    return web.json_response(level.to_json())


@routes.get("/api/v1/teams/{team_id}/transcript-mail")
@needs(Scope.ADMIN)
async def get_team(request: web.Request) -> web.Response:
    await admin(request)
    level = await get_broker(request.app).transcript_mail.level(TEAM, _team_id(request))
    return web.json_response(level.to_json())


@routes.put("/api/v1/teams/{team_id}/transcript-mail")
@needs(Scope.ADMIN)
async def put_team(request: web.Request) -> web.Response:
    await admin(request)
    level = await get_broker(request.app).transcript_mail.set_level(
        TEAM, await json_body(request), _team_id(request))
    return web.json_response(level.to_json())


async def _end_user_token(request: web.Request) -> str:
    token = bearer_token(request)
    if not is_participant_token(token):
        await current_technician(request)  # 401 without a credential
        raise Forbidden("Only the session's end user asks for a copy.")
    return token


@routes.post("/api/v1/sessions/{session_id}/transcript-copy")
@needs(NO_TOKEN)
async def request_copy(request: web.Request) -> web.Response:
    """A code to the address the end user typed, in the language of their page; the
    transcript's times will be in their browser's time zone."""
    token = await _end_user_token(request)
    data = await json_body(request)
    found = await get_broker(request.app).transcript_mail.request_copy(
        request.match_info["session_id"], token, data.get("email"),
        request.app[CATALOGS].negotiate(request), zone_of(request))
    return web.json_response(copy_json(found), status=202)


@routes.post("/api/v1/sessions/{session_id}/transcript-copy/confirm")
@needs(NO_TOKEN)
async def confirm_copy(request: web.Request) -> web.Response:
    token = await _end_user_token(request)
    data = await json_body(request)
    found, sent = await get_broker(request.app).transcript_mail.confirm_copy(
        request.match_info["session_id"], token, data.get("code"))
    return web.json_response({**copy_json(found), "sent": sent})
