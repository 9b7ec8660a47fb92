"""Single sign-on pages: `/login/sso` sends the browser to the OpenID provider,
`/login/sso/callback` takes it back (broker/sso checks everything). What this browser must
keep in between (state, nonce, the PKCE verifier) rides in its encrypted session cookie,
for ten minutes and one return only. A refusal is an error page that says why."""

from __future__ import annotations

import hmac
from typing import Final

from aiohttp import web
from aiohttp_session import get_session

from broker.errors import NotFound
from broker.sso import OidcClient, SignOn, SignOnRefused

from . import factor_login
from .pages import finish_login
from .state import get_broker

routes = web.RouteTableDef()
_KEY: Final = "sso"
_SECONDS: Final = 600
_CALLBACK: Final = "/login/sso/callback"
_CLIENT: Final = web.AppKey("sso_client", list)  # [OidcClient] once first used


def _client(app: web.Application) -> OidcClient:
    broker = get_broker(app)
    if not broker.settings.sso:
        raise NotFound("Single sign-on is not set up.")
    held = app[_CLIENT]
    if not held:
        held.append(OidcClient(broker.settings, broker.clock))
    client: OidcClient = held[0]
    return client


def _redirect_uri(request: web.Request) -> str:
    return get_broker(request.app).settings.base_url + _CALLBACK


@routes.get("/login/sso")
async def start(request: web.Request) -> web.Response:
    started = await _client(request.app).start(_redirect_uri(request))
    session = await get_session(request)
    session[_KEY] = {"state": started.state, "nonce": started.nonce,
                     "verifier": started.verifier,
                     "until": get_broker(request.app).clock.now() + _SECONDS}
    raise web.HTTPSeeOther(started.url)


@routes.get(_CALLBACK)
async def callback(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    client = _client(request.app)
    session = await get_session(request)
    pending = session.pop(_KEY, None)  # one return per sign-in, whatever happens
    if request.query.get("error"):
        raise SignOnRefused("The identity provider refused the sign-in.",
                            code="sso_provider")
    state, code = request.query.get("state", ""), request.query.get("code", "")
    if not (isinstance(pending, dict) and state and code
            and broker.clock.now() < float(pending.get("until", 0))
            and hmac.compare_digest(str(pending.get("state", "")).encode(), state.encode())):
        raise SignOnRefused("This sign-in did not start in this browser, or it took too "
                            "long.", code="sso_state")
    identity = await client.finish(code, _redirect_uri(request), str(pending["verifier"]),
                                   str(pending["nonce"]))
    technician = await SignOn(broker.settings, broker.technicians, broker.accounts,
                              broker.teams).technician(identity)
    return (await factor_login.after_password(request, technician)
            or await finish_login(request, technician))


def setup(app: web.Application) -> None:
    app[_CLIENT] = []
    app.add_routes(routes)
