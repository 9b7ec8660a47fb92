"""The native agent at the edge: agent links for the end user's chat page, the agent's
redemption of one, and its presence on the session socket (docs/agent.md).
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from broker.clock import isoformat
from broker.errors import KEY_MALFORMED, KeyRejected
from broker.protocol.agent import AgentHello
from broker.rtc.agents import AgentService
from broker.sessions import Actor

from .api import json_body, session_for_caller
from .auth import client_address
from .state import get_broker
from .ws import CLOSE_HOOKS, Connection, Participant, handles

routes = web.RouteTableDef()
AGENTS: Final = web.AppKey("agents", AgentService)
# The sockets that said agent.hello, with who they are: their close is stored.
_HELLOED: Final = web.AppKey("agent_sockets", weakref.WeakKeyDictionary[Connection, Actor])
LINK_PREFIX = "/a/"


def get_agents(app: web.Application) -> AgentService:
    try:
        return app[AGENTS]
    except KeyError:
        raise RuntimeError("the agent service is not open: web.agent.setup() sets it up "
                           "on startup") from None


@routes.post("/api/v1/sessions/{session_id}/agent-link")
async def create_agent_link(request: web.Request) -> web.Response:
    """The end user's page asks for a link to start the agent with."""
    session, actor = await session_for_caller(request)
    link = await get_agents(request.app).issue_link(session.id, actor)
    settings = get_broker(request.app).settings
    url = f"{settings.base_url}{LINK_PREFIX}{link.token}"
    return web.json_response({"link": url, "command": f"{settings.agent_command} {url}",
                              "expires_at": isoformat(link.expires_at)}, status=201)


@routes.post("/api/v1/agent/join")
async def agent_join(request: web.Request) -> web.Response:
    """The agent redeems an agent link: it becomes a participant with its own token."""
    data = await json_body(request)
    link = data.get("link")
    if not isinstance(link, str) or not link.strip():
        raise KeyRejected("Send 'link': the agent link from the chat page.", code=KEY_MALFORMED)
    token = link.strip().rsplit(LINK_PREFIX, 1)[-1].split("?", 1)[0].split("#", 1)[0]
    broker = get_broker(request.app)
    client = client_address(request, broker.settings.trust_forwarded_for)
    # Guessing agent links is limited like guessing keys (see GuessLimiter.attempt).
    async with broker.redeem_limiter.attempt(client, include_global=False) as attempt:
        try:
            admission = await get_agents(request.app).redeem_link(token)
        except KeyRejected:
            attempt.fail()
            raise
    session = await broker.sessions.get(admission.session_id)
    return web.json_response({
        "session_id": admission.session_id,
        "participant_token": admission.participant_token,
        "technician_name": session.technician_name,
        "name": admission.actor.name,
        "ws_url": f"/api/v1/sessions/{admission.session_id}/ws",
    })


@handles(AgentHello)
async def _hello(p: Participant, message: AgentHello) -> None:
    await get_agents(p.request.app).hello(p.session.id, p.actor, message.version,
                                          message.platform)
    p.request.app[_HELLOED][p.conn] = p.actor


async def _socket_closed(p: Participant) -> None:
    actor = p.request.app[_HELLOED].pop(p.conn, None)
    if actor is not None:
        await get_agents(p.request.app).gone(p.session.id, actor)


def setup(app: web.Application) -> None:
    """Routes, and the agent service once the broker is open (after create_app's own)."""

    async def agents_ctx(app: web.Application) -> AsyncIterator[None]:
        broker = get_broker(app)
        app[AGENTS] = AgentService(
            broker.settings, broker.engine, broker.journal, broker.hasher, broker.sealer,
            broker.clock)
        yield

    app[_HELLOED] = weakref.WeakKeyDictionary()
    app.cleanup_ctx.append(agents_ctx)
    app.add_routes(routes)
    if _socket_closed not in CLOSE_HOOKS:
        CLOSE_HOOKS.append(_socket_closed)
