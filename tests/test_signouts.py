"""Ending a credential closes the sockets it opened (web/signouts.py): a logout, an admin
ending a login or taking its seat, a password change or reset, disabling a technician
(whose API tokens are revoked with it). Each browser below is a client of its own, with
its own cookies, on a real loopback server."""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.core import Broker
from broker.handoff.logins import LOGIN_LIFETIME
from broker.schema import logins, technicians
from broker.settings import Settings
from broker.technicians import Ending, Scope
from web.signouts import get_signouts

from .conftest import PASSWORD, Tech, csrf_from, login, start_session

# Bounded waits, not timing assertions: a close normally comes within milliseconds.
CLOSE_WAIT = 10.0


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # One seat, so that an admin logging in must take Alice's.
    return Settings(data_dir=tmp_path / "data", port=8080, database_url=database_url,
                    seats=1)


class Browser:
    """A browser of its own (cookies), with its dashboard socket and session sockets."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.csrf = ""

    def url(self, path: str) -> str:
        return str(self.client.make_url(path))

    async def log_in(self, email: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        async with self.http.get(self.url("/login")) as page:
            csrf = csrf_from(await page.text())
        async with self.http.post(self.url("/login"), allow_redirects=False, data={
                "email": email, "password": password, "_csrf": csrf}) as response:
            await response.read()
            return response

    async def dashboard(self) -> aiohttp.ClientWebSocketResponse:
        async with self.http.get(self.url("/dashboard")) as page:
            match = re.search(r'data-csrf="([^"]+)"', await page.text())
        assert match
        self.csrf = match.group(1)
        ws = await self.http.ws_connect(self.url("/api/v1/technician/ws"))
        self.sockets.append(ws)
        return ws

    async def session_socket(self, session_id: str,
                             token: str | None = None) -> aiohttp.ClientWebSocketResponse:
        ws = await self.http.ws_connect(self.url(f"/api/v1/sessions/{session_id}/ws"))
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "token": token})
        while (await ws.receive_json(timeout=5))["type"] != "synced":
            pass
        return ws

    async def post_form(self, path: str, **fields: str) -> int:
        async with self.http.post(self.url(path), allow_redirects=False,
                                  data={"_csrf": self.csrf, **fields}) as response:
            return response.status

    async def close(self) -> None:
        for ws in self.sockets:
            await ws.close()
        await self.http.close()


@pytest.fixture
async def browsers(client: TestClient) -> AsyncIterator[Callable[[], Browser]]:
    made: list[Browser] = []

    def make() -> Browser:
        made.append(Browser(client))
        return made[-1]

    yield make
    for browser in made:
        await browser.close()


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
    """Read on (frames sent before the close are skipped) until the broker closes."""
    async with asyncio.timeout(CLOSE_WAIT):
        while True:
            message = await ws.receive()
            if message.type == WSMsgType.CLOSE:
                return int(message.data), str(message.extra)
            assert message.type == WSMsgType.TEXT, message


async def still_open(ws: aiohttp.ClientWebSocketResponse, client: TestClient,
                     tech: Tech) -> None:
    """A dashboard socket still open gets the update of a session started now."""
    started = await start_session(client, tech)
    async with asyncio.timeout(CLOSE_WAIT):
        while True:
            frame = await ws.receive_json()
            if frame["type"] == "session.update" and (
                    frame["session"]["session_id"] == started["session_id"]):
                return


async def answers_ping(ws: aiohttp.ClientWebSocketResponse) -> None:
    """A session socket still open answers a ping (frames before the pong are skipped)."""
    await ws.send_json({"type": "ping"})
    async with asyncio.timeout(CLOSE_WAIT):
        while (await ws.receive_json())["type"] != "pong":
            pass


async def alice_connected(browsers: Callable[[], Browser], client: TestClient,
                          alice: Tech) -> tuple[Browser, list[aiohttp.ClientWebSocketResponse]]:
    """Alice logged in, with her dashboard and a session pane open; the session's
    end user is not a technician and keeps their socket."""
    browser = browsers()
    assert (await browser.log_in(alice.technician.email)).status == 303
    dashboard = await browser.dashboard()
    session_id = (await start_session(client, alice))["session_id"]
    pane = await browser.session_socket(session_id)
    return browser, [dashboard, pane]


async def login_of(broker: Broker, technician_id: int) -> str:
    return next(login.id for login in await broker.logins.active()
                if login.technician_id == technician_id)


async def test_logging_out_closes_the_sockets_of_that_login(
        client: TestClient, tech: Tech, browsers: Callable[[], Browser]) -> None:
    browser, sockets = await alice_connected(browsers, client, tech)
    started = time.monotonic()
    assert await browser.post_form("/logout") == 303
    for ws in sockets:
        assert await closed_with(ws) == (4401, "logout")
    print(f"sockets closed {1000 * (time.monotonic() - started):.1f} ms after the logout")


async def test_an_admin_ending_a_login_closes_its_sockets(
        client: TestClient, broker: Broker, tech: Tech,
        make_tech: Callable[..., Awaitable[Tech]], browsers: Callable[[], Browser]) -> None:
    admin = await make_tech("Root", admin=True)
    _, sockets = await alice_connected(browsers, client, tech)
    login_id = await login_of(broker, tech.technician.id)
    response = await client.post(f"/api/v1/logins/{login_id}/end", headers=admin.auth)
    assert response.status == 204
    for ws in sockets:
        assert await closed_with(ws) == (4401, "ended_by_admin")


async def test_an_admin_taking_the_seat_closes_the_sockets_of_the_login_it_ends(
        client: TestClient, broker: Broker, tech: Tech,
        make_tech: Callable[..., Awaitable[Tech]], browsers: Callable[[], Browser]) -> None:
    admin = await make_tech("Root", admin=True)
    _, sockets = await alice_connected(browsers, client, tech)
    login_id = await login_of(broker, tech.technician.id)
    root = browsers()
    seats_page = await root.log_in(admin.technician.email)
    assert seats_page.status == 409  # the one seat is Alice's
    async with root.http.get(root.url("/login")) as page:
        root.csrf = csrf_from(await page.text())
    assert await root.post_form("/login/seat", end=login_id) == 303
    for ws in sockets:
        assert await closed_with(ws) == (4401, "seat_taken")


async def test_a_password_change_closes_the_other_logins_sockets_only(
        client: TestClient, tech: Tech, browsers: Callable[[], Browser]) -> None:
    _, sockets = await alice_connected(browsers, client, tech)
    other = browsers()
    assert (await other.log_in(tech.technician.email)).status == 303
    kept = await other.dashboard()
    assert await other.post_form("/password", current=PASSWORD, new="a new long password",
                                 repeat="a new long password") == 303
    for ws in sockets:
        assert await closed_with(ws) == (4401, "password_changed")
    await still_open(kept, client, tech)  # the login she changed it from stays


async def test_a_password_reset_closes_every_login_socket_but_not_token_sockets(
        client: TestClient, tech: Tech, make_tech: Callable[..., Awaitable[Tech]],
        browsers: Callable[[], Browser]) -> None:
    admin = await make_tech("Root", admin=True)
    browser, sockets = await alice_connected(browsers, client, tech)
    session_id = (await start_session(client, tech))["session_id"]
    by_token = await browser.session_socket(session_id, tech.token)
    response = await client.post(f"/api/v1/technicians/{tech.technician.id}/password-reset",
                                  headers=admin.auth)
    assert response.status == 200
    for ws in sockets:
        assert await closed_with(ws) == (4401, "password_reset")
    # API tokens stay valid through a reset: that socket is still served.
    await answers_ping(by_token)


async def test_revoking_one_token_closes_its_sockets_alone(
        client: TestClient, broker: Broker, tech: Tech,
        browsers: Callable[[], Browser]) -> None:
    tokens = broker.technicians.tokens
    made, revoked = await tokens.create(tech.technician.id, frozenset({Scope.SESSIONS_WRITE}))
    browser = browsers()  # (a technician has one socket per session: two sessions)
    doomed = await browser.session_socket((await start_session(client, tech))["session_id"],
                                          revoked)
    kept = await browser.session_socket((await start_session(client, tech))["session_id"],
                                        tech.token)
    response = await client.delete(f"/api/v1/tokens/{made.id}", headers=tech.auth)
    assert response.status == 204
    assert await closed_with(doomed) == (4401, "logout")
    await answers_ping(kept)  # opened with another of her tokens: still served
    # A socket opened with the revoked token later is refused; one tracked when the
    # revocation's message was missed is closed when the node checks again.
    assert not await tokens.alive(made.id) and await tokens.alive(1)


async def test_disabling_a_technician_closes_login_and_token_sockets(
        client: TestClient, tech: Tech, make_tech: Callable[..., Awaitable[Tech]],
        browsers: Callable[[], Browser]) -> None:
    admin = await make_tech("Root", admin=True)
    browser, sockets = await alice_connected(browsers, client, tech)
    session_id = (await start_session(client, tech))["session_id"]
    sockets.append(await browser.session_socket(session_id, tech.token))
    response = await client.patch(f"/api/v1/technicians/{tech.technician.id}",
                                  headers=admin.auth, json={"disabled": True})
    assert response.status == 200
    for ws in sockets:
        assert await closed_with(ws) == (4401, "technician_disabled")


async def test_an_admin_made_a_technician_reconnects_and_sees_only_their_own(
        client: TestClient, broker: Broker, tech: Tech,
        make_tech: Callable[..., Awaitable[Tech]], browsers: Callable[[], Browser]) -> None:
    root, other_admin = await make_tech("Root", admin=True), await make_tech("Ops", admin=True)
    alices = (await start_session(client, tech))["session_id"]
    browser = browsers()
    assert (await browser.log_in(root.technician.email)).status == 303
    dashboard = await browser.dashboard()
    watching = await browser.session_socket(alices)  # an admin may join any session
    response = await client.patch(f"/api/v1/technicians/{root.technician.id}",
                                  headers=other_admin.auth, json={"admin": False})
    assert response.status == 200
    for ws in (dashboard, watching):
        assert await closed_with(ws) == (4005, "admin_revoked")
    # Reconnected, as the pages do: Alice's session is out of reach and out of the list.
    again = await browser.http.ws_connect(browser.url(f"/api/v1/sessions/{alices}/ws"))
    browser.sockets.append(again)
    await again.send_json({"type": "hello"})
    assert (await again.receive_json(timeout=CLOSE_WAIT))["code"] == "forbidden"
    dashboard = await browser.dashboard()
    own = (await start_session(client, root))["session_id"]
    async with asyncio.timeout(CLOSE_WAIT):
        while (shown := (await dashboard.receive_json()).get("session", {})).get(
                "session_id") != own:
            assert shown.get("session_id") != alices


async def test_other_technicians_sockets_stay_open(
        client: TestClient, tech: Tech, make_tech: Callable[..., Awaitable[Tech]],
        browsers: Callable[[], Browser]) -> None:
    bob = await make_tech("Bob")
    alice, sockets = await alice_connected(browsers, client, tech)
    bobs = browsers()
    bob_session = (await start_session(client, bob))["session_id"]
    bob_pane = await bobs.session_socket(bob_session, bob.token)
    assert await alice.post_form("/logout") == 303
    for ws in sockets:
        assert await closed_with(ws) == (4401, "logout")
    await answers_ping(bob_pane)


async def test_a_login_whose_time_ran_out_closes_its_sockets_at_the_sweep(
        client: TestClient, broker: Broker, clock: FakeClock, tech: Tech,
        browsers: Callable[[], Browser]) -> None:
    _, sockets = await alice_connected(browsers, client, tech)
    clock.advance(LOGIN_LIFETIME - 1)
    await broker.logins.end_expired()  # what every node's sweep does
    assert await login_of(broker, tech.technician.id)  # not yet
    clock.advance(1)
    await broker.logins.end_expired()
    for ws in sockets:
        assert await closed_with(ws) == (4401, "expired")
    await broker.logins.end_expired()  # ended once: nothing more to do


async def test_a_missed_ending_is_found_when_the_bus_resyncs(
        client: TestClient, broker: Broker, tech: Tech,
        make_tech: Callable[..., Awaitable[Tech]], browsers: Callable[[], Browser]) -> None:
    """Messages between nodes can be lost while the bus is down; its resync makes every
    node check its sockets' credentials in the database."""
    bob = await make_tech("Bob")
    alice, sockets = await alice_connected(browsers, client, tech)
    alices_token = await alice.session_socket((await start_session(client, tech))["session_id"],
                                              tech.token)
    bobs = await browsers().session_socket((await start_session(client, bob))["session_id"],
                                           bob.token)
    login_id = await login_of(broker, tech.technician.id)
    async with broker.engine.begin() as conn:  # changed where no message reached this node
        await conn.execute(logins.update().where(logins.c.id == login_id).values(
            ended_at=broker.clock.now(), ended_reason="ended_by_admin"))
        await conn.execute(technicians.update().where(
            technicians.c.id == bob.technician.id).values(disabled_at=broker.clock.now()))
    get_signouts(client.app).resync()
    for ws in sockets:
        assert await closed_with(ws) == (4401, "ended_by_admin")
    assert await closed_with(bobs) == (4401, "technician_disabled")
    await answers_ping(alices_token)  # her token is still good


async def test_a_copied_cookie_of_an_ended_login_opens_no_socket(
        client: TestClient, tech: Tech, browsers: Callable[[], Browser]) -> None:
    browser, sockets = await alice_connected(browsers, client, tech)
    copy = browsers()
    copy.http.cookie_jar.update_cookies(
        browser.http.cookie_jar.filter_cookies(client.make_url("/")))
    assert await browser.post_form("/logout") == 303
    for ws in sockets:
        await closed_with(ws)
    ws = await copy.http.ws_connect(copy.url("/api/v1/technician/ws"))
    copy.sockets.append(ws)
    assert (await ws.receive_json(timeout=CLOSE_WAIT))["code"] == "unauthenticated"
    assert await closed_with(ws) == (4401, "unauthenticated")


async def test_the_dashboard_says_every_ending_in_words_in_each_language(
        client: TestClient, tech: Tech) -> None:
    await login(client, tech.technician.email)
    said = {}
    for lang in ("en", "de"):
        page = await (await client.get(f"/dashboard?lang={lang}")).text()
        match = re.search(r"id=\"dashboard\"[^>]*data-strings='([^']*)'", page)
        assert match
        strings = json.loads(html.unescape(match.group(1)))
        said[lang] = {ending: strings.get(f"signed_out_{ending.value}") for ending in Ending}
    for ending in Ending:
        assert said["en"][ending] and said["de"][ending], ending
        assert said["en"][ending] != said["de"][ending], f"{ending} is not translated"
