"""Every API route against every token scope.

Each API handler declares the scope an API token needs for it (web/scopes.py);
`test_every_api_route_declares_a_scope` fails for one that does not. Then every API
route of the router is called, as test_route_matrix.py calls it, with a token of each
single scope, held by the technician whom POLICY lets through (the session's own, else
an admin): a token with the declared scope (or `sessions:write` where `sessions:read`
is declared) gets past authorization as that technician's full token does; any other
gets 403 insufficient_scope with RFC 6750's WWW-Authenticate naming the scope. Routes
that take no technician's token answer scoped tokens as they answer anyone.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Final

import pytest
import pytest_asyncio
from aiohttp import ClientSession, DummyCookieJar, WSMsgType

from broker.settings import Settings
from broker.technicians import Scope
from broker.technicians.tokens import grants
from web import create_app
from web.scopes import NO_TOKEN, declared
from web.state import get_broker

from .live_broker import Live
from .route_policy import ANYONE, SOCKETS, Rule, Who
from .route_scene import People, Scene
from .test_route_matrix import (  # noqa: F401 (the module's fixtures)
    ROUTES,
    Outcome,
    _path,
    _positive_controls,
    live,
    people,
    rule_for,
    scene,
)

API_ROUTES: Final = [(m, p) for m, p in ROUTES if p.startswith("/api/")]


def _needs() -> dict[tuple[str, str], Any]:
    with tempfile.TemporaryDirectory() as directory:
        app = create_app(Settings(data_dir=Path(directory)))
        return {(route.method, route.resource.canonical): declared(route.handler)
                for route in app.router.routes() if route.resource is not None}


NEEDS: Final = _needs()


def test_every_api_route_declares_a_scope() -> None:
    missing = [f"{m} {p}" for (m, p), need in NEEDS.items()
               if p.startswith("/api/") and need is None]
    assert not missing, f"API routes without @needs(...) (web/scopes.py): {missing}"


def test_credentials_and_administration_need_the_admin_scope() -> None:
    """What the issue names: creating technicians, resetting passwords, tokens, factors."""
    for method, path in NEEDS:
        if path.startswith(("/api/v1/technicians/", "/api/v1/tokens", "/api/v1/me/factors",
                            "/api/v1/factor-policy")) or (
                method == "POST" and path == "/api/v1/technicians"):
            assert NEEDS[(method, path)] is Scope.ADMIN, (method, path)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scoped(live: Live, people: People) -> dict[tuple[Who, Scope], str]:
    """A token of each single scope for the session's technician and for the admin."""
    tokens = get_broker(live.client.app).technicians.tokens
    made = {}
    for who, tech in ((Who.OWN_TECH, people.alice), (Who.ADMIN, people.root)):
        for scope in Scope:
            made[(who, scope)] = (await tokens.create(tech.technician.id,
                                                      frozenset({scope})))[1]
    return made


async def _call(method: str, path: str, rule: Rule, token: str, scene: Scene) -> tuple[
        Outcome, str]:
    """The route called with `token` as a bearer token (in hello on a socket)."""
    target = await _path(path, rule, scene)
    async with ClientSession(cookie_jar=DummyCookieJar()) as http:
        url = scene.client.make_url(target)
        if path in SOCKETS and method == "GET":
            async with http.ws_connect(url) as ws:
                await ws.send_json({"type": "hello", "token": token})
                first = await ws.receive(timeout=5)
                assert first.type == WSMsgType.TEXT, first
                if '"type":"error"' not in first.data:
                    return Outcome(101, first.data[:300]), ""
                closing = await ws.receive(timeout=5)
                return Outcome(int(closing.data), first.data[:300]), ""
        body = await rule.body(scene)
        kwargs: dict[str, Any] = {"json": body} if body else {}
        if method == "PATCH":
            kwargs = {"data": b"abc"}
        headers = {**dict(rule.headers), "Authorization": f"Bearer {token}"}
        async with http.request(method, url, headers=headers, allow_redirects=False,
                                **kwargs) as response:
            text = await response.text()
            return (Outcome(response.status, text[:300]),
                    response.headers.get("WWW-Authenticate", ""))


def _holder(rule: Rule) -> Who | None:
    """The technician whose scoped tokens are tried: one the route lets through."""
    for who in (Who.OWN_TECH, Who.ADMIN):
        if who in rule.allowed:
            return who
    return None


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("method, path", API_ROUTES, ids=[f"{m} {p}" for m, p in API_ROUTES])
async def test_route_with_each_scope(live: Live, people: People, scene: Scene,
                                     scoped: dict[tuple[Who, Scope], str], method: str,
                                     path: str) -> None:
    rule = rule_for(method, path)
    assert rule is not None
    need = NEEDS[(method, path)] or NEEDS.get(("GET", path))
    holder = _holder(rule)
    wrong = []
    for scope in Scope:
        token = scoped[(holder or Who.OWN_TECH, scope)]
        current = scene
        if rule.fresh and holder is not None:
            current = await Scene(live.client, people).start()
        try:
            outcome, challenge = await _call(method, path, rule, token, current)
        finally:
            if current is not scene:
                await current.close()
        what = f"{method} {path} with {scope.value}: {outcome.status} {outcome.detail!r}"
        if rule.refused is not None:
            if outcome.status not in rule.refused:
                wrong.append(f"{what}; expected {rule.refused}")
        elif need is NO_TOKEN or holder is None:
            # Not a technician's route: scopes change nothing.
            passed = outcome.status not in (401, 403, 4401, 4403) and outcome.status < 500
            if passed != (rule.allowed == ANYONE):
                wrong.append(f"{what}; expected as for anyone ({rule.allowed == ANYONE})")
        elif grants(frozenset({scope}), need):
            if outcome.status in (401, 403, 4401, 4403) or outcome.status >= 500:
                wrong.append(f"{what}; expected to be let through")
            elif holder in _positive_controls(rule) and outcome.status == 404:
                wrong.append(f"{what}; the positive control found nothing")
        elif path in SOCKETS:
            if outcome.status != 4403 or "insufficient_scope" not in outcome.detail:
                wrong.append(f"{what}; expected close 4403 insufficient_scope")
        elif outcome.status != 403 or (method != "HEAD" and "insufficient_scope" not in
                                       outcome.detail) or (
                f'error="insufficient_scope", scope="{need.value}"' not in challenge):
            wrong.append(f"{what} {challenge!r}; expected 403 insufficient_scope")
    assert not wrong, "\n".join(wrong)
    assert not live.errors.take()

