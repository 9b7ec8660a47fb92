"""The native agent at the edge: agent links for the end user's chat page, the agent's
redemption of one, and its presence on the session socket (docs/agent.md).
"""

from __future__ import annotations

import weakref
from typing import Any, Final

from aiohttp import web

from broker.clock import isoformat
from broker.errors import KEY_MALFORMED, InvalidInput, KeyRejected
from broker.protocol.agent import AgentHello
from broker.sessions import Actor

from .api import json_body, redeem, session_for_caller
from .auth import client_address
from .scopes import NO_TOKEN, needs
from .state import get_broker
from .ws import Connection, Participant, get_frame_handlers

routes = web.RouteTableDef()
# The sockets that said agent.hello, with who they are: their close is stored.
_HELLOED: Final = web.AppKey("agent_sockets", weakref.WeakKeyDictionary[Connection, Actor])
LINK_PREFIX = "/a/"


@routes.post("/api/v1/sessions/{session_id}/agent-link")
@needs(NO_TOKEN)
async def create_agent_link(request: web.Request) -> web.Response:
    """The end user's page asks for a link to start the agent with."""
    session, actor = await session_for_caller(request)
    broker = get_broker(request.app)
    link = await broker.agents.issue_link(session.id, actor)
    settings = broker.settings
    url = f"{settings.base_url}{LINK_PREFIX}{link.token}"
    return web.json_response({"link": url, "command": f"{settings.agent_command} {url}",
                              "expires_at": isoformat(link.expires_at)}, status=201)


@routes.post("/api/v1/agent/join")
@needs(NO_TOKEN)
async def agent_join(request: web.Request) -> web.Response:
    """The agent redeems an agent link, or the support key or join link: it becomes a
    participant with its own token, marked as the agent (only it may say agent.hello)."""
    data = await json_body(request)
    if data.get("key") is not None or data.get("token") is not None:
        session_id, participant_token, name = await _join_with_key(request, data)
    else:
        session_id, participant_token, name = await _join_with_link(request, data.get("link"))
    session = await get_broker(request.app).sessions.get(session_id)
    return web.json_response({
        "session_id": session_id,
        "participant_token": participant_token,
        "technician_name": session.technician_name,
        "name": name,
        "ws_url": f"/api/v1/sessions/{session_id}/ws",
    })


async def _join_with_key(request: web.Request, data: dict[str, Any]) -> tuple[str, str, str]:
    key, token, name = (data.get(field) for field in ("key", "token", "name"))
    if not all(value is None or isinstance(value, str) for value in (key, token, name)):
        raise InvalidInput("'key', 'token' and 'name' are strings.")
    redemption = await redeem(request, code=key, token=token, name=name)
    await get_broker(request.app).agents.admit_with_key(redemption.session_id,
                                                        redemption.actor)
    return redemption.session_id, redemption.participant_token, redemption.actor.name


async def _join_with_link(request: web.Request, link: Any) -> tuple[str, str, str]:
    if not isinstance(link, str) or not link.strip():
        raise KeyRejected("Send 'link': the agent link from the chat page (or 'key' or "
                          "'token').", code=KEY_MALFORMED)
    token = link.strip().rsplit(LINK_PREFIX, 1)[-1].split("?", 1)[0].split("#", 1)[0]
    broker = get_broker(request.app)
    client = client_address(request, broker.settings.trust_forwarded_for)
    # Guessing agent links is limited like guessing keys (see GuessLimiter.attempt).
    async with broker.redeem_limiter.attempt(client, include_global=False) as attempt:
        try:
            admission = await broker.agents.redeem_link(token)
        except KeyRejected:
            attempt.fail()
            raise
    return admission.session_id, admission.participant_token, admission.actor.name


async def _hello(p: Participant, message: AgentHello) -> None:
    await p.broker.agents.hello(p.session.id, p.actor, message.version, message.platform)
    p.request.app[_HELLOED][p.conn] = p.actor


async def _socket_closed(p: Participant) -> None:
    actor = p.request.app[_HELLOED].pop(p.conn, None)
    if actor is not None:
        await p.broker.agents.gone(p.session.id, actor)


def setup(app: web.Application) -> None:
    app[_HELLOED] = weakref.WeakKeyDictionary()
    app.add_routes(routes)
    handlers = get_frame_handlers(app)
    handlers.add(AgentHello, _hello)
    handlers.on_close(_socket_closed)
