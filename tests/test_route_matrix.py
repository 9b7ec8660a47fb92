"""Who may call what: every route of the router, with every kind of credential.

POLICY (tests/route_policy.py) says, for each route (method and path as the router spells
them), which kinds of caller get past its authorization. The routes under test come from
the router of `create_app`, and `test_every_route_has_a_policy` fails for a route without
an entry (or an entry without a route), so no new route goes without an authorization
decision.

Denied: on the API 401 without a (valid) credential, else 403 (404 to technicians where
the rule says the thing is hidden); a page answers 401 or 403, or sends the caller to
/login. Allowed: anything but 401, 403 and 5xx (a
validation error is past authorization). The session's own technician and end user are
positive controls: they get no 404 either, so the path parameters are real. WebSockets
are opened with each credential's hello: denied is an `error` frame and close 4401/4403.
Calls that change what later calls see (ending a session, answering a transfer) get a
fresh scene each. Credentials travel as the clients send them: bearer tokens on the API
and in hello, the login cookie on pages and the dashboard socket, the participant cookie
on the chat page (an attacker's own token planted under the session's cookie name).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from typing import Any, Final

import pytest
import pytest_asyncio
from aiohttp import ClientSession, WSMsgType
from yarl import URL

from .conftest import csrf_from
from .live_broker import ErrorLog, Live, add_tech, module_broker, router_routes
from .route_policy import (
    ADMINS,
    ANYONE,
    COOKIE_SOCKETS,
    NOBODY,
    POLICY,
    SECRET,
    SOCKETS,
    TECHS,
    UNKNOWN,
    Rule,
    Who,
)
from .route_scene import Api, People, Scene

ROUTES: Final = router_routes()


def rule_for(method: str, path: str) -> Rule | None:
    found = POLICY.get((method, path))
    if found is None and method == "HEAD":
        found = POLICY.get(("GET", path))
    return found


def test_every_route_has_a_policy() -> None:
    missing = [f"{method} {path}" for method, path in ROUTES if rule_for(method, path) is None]
    assert not missing, f"routes without an authorization decision in POLICY: {missing}"
    stale = [f"{method} {path}" for method, path in POLICY if (method, path) not in ROUTES]
    assert not stale, f"POLICY entries that are no route: {stale}"


# -- the people and the scenes -------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    directory = tmp_path_factory.mktemp("matrix")
    async with module_broker(directory, transfer_min_free_bytes=0, intake_address_burst=1000,
                             intake_global_per_minute=1000) as client:
        with ErrorLog().installed() as errors:
            yield Live(client, errors)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def people(live: Live) -> People:
    client = live.client
    alice, bob = await add_tech(client, "Alice"), await add_tech(client, "Bob")
    root, erin = await add_tech(client, "Root", admin=True), await add_tech(client, "Erin")
    api = Api(client)
    other = await api.join_new(bob)
    ended = await api.join_new(bob)
    await api.call("POST", f"/api/v1/sessions/{ended['session_id']}/end", bob.token, ok=200)
    return People(alice, bob, root, erin, other["participant_token"],
                  ended["participant_token"])


@pytest_asyncio.fixture(loop_scope="module")
async def scene(live: Live, people: People) -> AsyncIterator[Scene]:
    made = await Scene(live.client, people).start()
    yield made
    await made.close()


# -- calling a route as someone ------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    status: int  # the HTTP status; for a socket 101 (welcome) or its close code
    detail: str  # the answer's beginning (or the socket's first frame)
    location: str = ""
    leaks: bool = False  # the answer holds the scene's chat line

    @property
    def to_login(self) -> bool:
        return self.status in (302, 303) and URL(self.location).path == "/login"


def _token(who: Who, scene: Scene) -> str | None:
    people = scene.people
    return {Who.NONE: None, Who.FORGED_TECH: "sbt_" + "A" * 43,
            Who.FORGED_USER: "sbp_" + "A" * 43, Who.OTHER_TECH: people.bob.token,
            Who.ADMIN: people.root.token, Who.OWN_TECH: people.alice.token,
            Who.OTHER_USER: people.other_user,
            Who.ENDED_USER: people.ended_user, Who.OWN_USER: scene.own_user}[who]


async def _browser(who: Who, scene: Scene) -> ClientSession:
    """`who` as a browser: technicians logged in, end users with their token in the
    scene's participant cookie."""
    people = scene.people
    techs = {Who.OTHER_TECH: people.bob, Who.ADMIN: people.root, Who.OWN_TECH: people.alice}
    http = await scene.jar(techs.get(who))
    token = _token(who, scene)
    if who is Who.FORGED_TECH:
        http.cookie_jar.update_cookies({"sb_session": "A" * 120},
                                       response_url=scene.client.make_url("/"))
    if who not in techs and token is not None:
        http.cookie_jar.update_cookies({f"sb_participant_{scene.session_id}": token},
                                       response_url=scene.client.make_url("/"))
    return http


async def _path(path: str, rule: Rule, scene: Scene) -> str:
    if path == "/static":
        return "/static/app.css"
    renames = dict(rule.params)
    for name in re.findall(r"\{(\w+)\}", path):
        path = path.replace(f"{{{name}}}", await scene.param(renames.get(name, name)))
    return path


async def call(method: str, path: str, rule: Rule, who: Who, scene: Scene) -> Outcome:
    # A page's browser logs in first: what the path names may change how its technician
    # logs in (a passkey of theirs asks for it after the password).
    browser = None if path.startswith("/api/") else await _browser(who, scene)
    target = await _path(path, rule, scene)
    if path in SOCKETS and method == "GET":
        return await _open_socket(path, target, who, scene)
    body = await rule.body(scene)
    headers = dict(rule.headers)
    if browser is None:
        http = await scene.jar()
        token = _token(who, scene)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"json": body} if body else {}
        if method == "PATCH":
            kwargs = {"data": b"abc"}
    else:
        http = browser
        kwargs = {}
        if method == "POST":  # a form, with the CSRF token this browser's pages carry
            page = await (await http.get("/login")).text()
            kwargs = {"data": {**body, "_csrf": csrf_from(page)}}
    async with http.request(method, scene.client.make_url(target), headers=headers,
                            allow_redirects=False, **kwargs) as response:
        text = await response.text()
        return Outcome(response.status, text[:300], response.headers.get("Location", ""),
                       SECRET in text)


async def _open_socket(path: str, target: str, who: Who, scene: Scene) -> Outcome:
    if path in COOKIE_SOCKETS:  # the dashboard's and the board's: the login cookie
        http = await _browser(who, scene)
        ws = await http.ws_connect(scene.client.make_url(target))
    else:
        http = await scene.jar()
        ws = await http.ws_connect(scene.client.make_url(target))
        await ws.send_json({"type": "hello", "token": _token(who, scene)})
    try:
        first = await ws.receive(timeout=5)
        assert first.type == WSMsgType.TEXT, first
        if '"type":"error"' not in first.data:
            return Outcome(101, first.data[:300])
        closing = await ws.receive(timeout=5)
        assert closing.type == WSMsgType.CLOSE, closing
        return Outcome(int(closing.data), first.data[:300], leaks=SECRET in first.data)
    finally:
        await ws.close()


def _positive_controls(rule: Rule) -> frozenset[Who]:
    """Who must reach the real thing (no 404): the session's own people where allowed,
    else the admin of an admin route, else anyone's call to a public one."""
    own = rule.allowed & {Who.OWN_TECH, Who.OWN_USER}
    if own:
        return own
    if rule.allowed == ADMINS:
        return ADMINS
    return frozenset({Who.NONE}) if rule.allowed == ANYONE else NOBODY


def check(method: str, path: str, rule: Rule, who: Who, outcome: Outcome) -> str | None:
    """What is wrong with `outcome`, or None."""
    what = f"{method} {path} as {who.value}: {outcome.status} {outcome.detail!r}"
    page = not path.startswith("/api/")
    if rule.refused is not None:
        return None if outcome.status in rule.refused else f"{what}; expected {rule.refused}"
    if who not in rule.allowed and outcome.leaks:
        return f"{what}; the refusal shows the session's chat"
    if who in rule.allowed:
        if outcome.status in (401, 403, 4401, 4403) or 500 <= outcome.status < 600:
            return f"{what}; expected to be let through"
        if who in _positive_controls(rule) and (outcome.status == 404 or (
                page and rule.allowed != ANYONE and outcome.to_login)):
            return f"{what}; the positive control found nothing"
        return None
    if path in SOCKETS:
        expected = {4401} if who in UNKNOWN else {4401, 4403}
        return None if outcome.status in expected else f"{what}; expected {expected}"
    if page:  # a page may also send the visitor to log in, or not find what is hidden
        refused = outcome.status in (401, 403) or outcome.to_login or (
            rule.hidden and who in TECHS and outcome.status == 404)
    elif who in UNKNOWN:
        refused = outcome.status == 401
    else:
        hides = rule.hidden and who in TECHS
        refused = outcome.status == (404 if hides else 403)
    if refused:
        return None
    return f"{what}; expected to be refused"


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("method, path", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_route(live: Live, people: People, scene: Scene, method: str, path: str) -> None:
    rule = rule_for(method, path)
    assert rule is not None, f"{method} {path} has no entry in POLICY"
    wrong = []
    # The refused first, then the allowed (whose calls may change the scene).
    for who in sorted(Who, key=lambda w: w in rule.allowed):
        current = scene
        if rule.fresh and who in rule.allowed:
            current = await Scene(live.client, people).start()
        try:
            problem = check(method, path, rule, who, await call(method, path, rule, who,
                                                                current))
            await current.settle()
        finally:
            if current is not scene:
                await current.close()
        if problem:
            wrong.append(problem)
    assert not wrong, "\n".join(wrong)
    assert not live.errors.take()

