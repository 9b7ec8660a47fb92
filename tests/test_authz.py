"""Every endpoint checks that the caller belongs to the session, and leaks nothing if not.

tests/test_route_matrix.py walks every route with every kind of credential; these are the
cases it does not cover: malformed credentials, unknown sessions, listings, the sockets'
auth phase, cookies, CSRF and origins."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from .conftest import Tech, join, login, start_session

SECRET_TEXT = "my password is hunter2"

ENDPOINTS = [
    ("GET", "/api/v1/sessions/{id}"),
    ("GET", "/api/v1/sessions/{id}/events?after=0"),
    ("POST", "/api/v1/sessions/{id}/messages"),
    ("POST", "/api/v1/sessions/{id}/end"),
    ("POST", "/api/v1/sessions/{id}/revoke"),
    ("GET", "/api/v1/sessions/{id}/transcript"),
]


@pytest.fixture
async def scene(client: TestClient, make_tech: Callable[..., Awaitable[Tech]]) -> dict[str, Any]:
    """Alice's session with an end user and a secret message; Bob's session; an admin."""
    alice, bob = await make_tech("Alice"), await make_tech("Bob")
    admin = await make_tech("Root", admin=True)
    mine = await start_session(client, alice)
    joined = await join(client, mine["key"])
    posted = await client.post(f"/api/v1/sessions/{mine['session_id']}/messages",
                               headers=alice.auth, json={"text": SECRET_TEXT})
    assert posted.status == 201
    other = await start_session(client, bob)
    other_joined = await join(client, other["key"])
    return {"alice": alice, "bob": bob, "admin": admin, "id": mine["session_id"],
            "participant": joined["participant_token"],
            "other_participant": other_joined["participant_token"]}


async def _call(client: TestClient, method: str, path: str, session_id: str,
                headers: dict[str, str]) -> tuple[int, str]:
    kwargs: dict[str, Any] = {"headers": headers}
    if method == "POST":
        kwargs["json"] = {"text": "intrusion"}
    response = await client.request(method, path.format(id=session_id), **kwargs)
    return response.status, await response.text()


@pytest.mark.parametrize("method, path", ENDPOINTS)
async def test_no_credential(client: TestClient, scene: dict[str, Any], method: str,
                             path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer sbt_nonsense"},
                    {"Authorization": "Bearer sbp_nonsense"}, {"Authorization": "Basic eDp5"}):
        status, body = await _call(client, method, path, scene["id"], headers)
        assert status == 401, (headers, body)
        assert SECRET_TEXT not in body


@pytest.mark.parametrize("method, path", ENDPOINTS)
async def test_unknown_session(client: TestClient, scene: dict[str, Any], method: str,
                               path: str) -> None:
    status, _ = await _call(client, method, path, "no-such-session", scene["alice"].auth)
    assert status == 404


async def test_admin_sees_every_session(client: TestClient, scene: dict[str, Any]) -> None:
    status, body = await _call(client, "GET", "/api/v1/sessions/{id}/events", scene["id"],
                               scene["admin"].auth)
    assert status == 200 and SECRET_TEXT in body
    listing = await (await client.get("/api/v1/sessions", headers=scene["admin"].auth)).json()
    assert len(listing["sessions"]) == 2
    mine = await (await client.get("/api/v1/sessions", headers=scene["bob"].auth)).json()
    assert [s["technician"]["name"] for s in mine["sessions"]] == ["Bob"]


async def test_socket_rejects_other_session_credentials(client: TestClient,
                                                        scene: dict[str, Any]) -> None:
    for token in (scene["other_participant"], scene["bob"].token, "sbp_nonsense", None):
        ws = await client.ws_connect(f"/api/v1/sessions/{scene['id']}/ws")
        try:
            await ws.send_json({"type": "hello", "token": token})
            frames, code = [], None
            while code is None:
                message = await ws.receive(timeout=5)
                if message.type == WSMsgType.TEXT:
                    frames.append(message.data)
                else:
                    code = message.data
            assert code in (4401, 4403), token
            assert all(SECRET_TEXT not in frame for frame in frames)
            assert '"type":"error"' in frames[0]
        finally:
            await ws.close()


async def test_socket_needs_hello_first(client: TestClient, scene: dict[str, Any]) -> None:
    ws = await client.ws_connect(f"/api/v1/sessions/{scene['id']}/ws")
    try:
        await ws.send_json({"type": "chat.send", "id": "1", "text": "hi"})
        error = await ws.receive_json()
        assert error["code"] == "unauthenticated"
        assert (await ws.receive()).data == 4401
    finally:
        await ws.close()


async def test_participant_page_needs_its_own_cookie(client: TestClient,
                                                     scene: dict[str, Any]) -> None:
    response = await client.get(f"/s/{scene['id']}")
    assert response.status == 403
    assert SECRET_TEXT not in await response.text()
    client.session.cookie_jar.update_cookies({f"sb_participant_{scene['id']}":
                                              scene["other_participant"]})
    response = await client.get(f"/s/{scene['id']}")
    assert response.status == 403


async def test_cookie_api_calls_need_csrf(client: TestClient, tech: Tech) -> None:
    csrf = await login(client, tech.technician.email)
    response = await client.post("/api/v1/sessions")
    assert response.status == 403
    assert (await response.json())["error"] == "csrf_failed"
    response = await client.post("/api/v1/sessions", headers={"X-CSRF-Token": "wrong"})
    assert response.status == 403
    response = await client.post("/api/v1/sessions", headers={"X-CSRF-Token": csrf})
    assert response.status == 201


async def test_cookie_socket_refuses_other_origins(client: TestClient, tech: Tech) -> None:
    await login(client, tech.technician.email)
    started = await start_session(client, tech)
    path = f"/api/v1/sessions/{started['session_id']}/ws"
    ws = await client.ws_connect(path, headers={"Origin": "http://evil.example"})
    try:
        await ws.send_json({"type": "hello"})
        assert (await ws.receive_json())["code"] == "unauthenticated"
    finally:
        await ws.close()
    host = f"{client.server.host}:{client.server.port}"
    ws = await client.ws_connect(path, headers={"Origin": f"http://{host}"})
    try:
        await ws.send_json({"type": "hello"})
        assert (await ws.receive_json())["type"] == "welcome"
    finally:
        await ws.close()


async def test_logout_ends_the_login(client: TestClient, tech: Tech) -> None:
    csrf = await login(client, tech.technician.email)
    response = await client.post("/logout", data={"_csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    response = await client.get("/api/v1/sessions")
    assert response.status == 401
    response = await client.get("/dashboard", allow_redirects=False)
    assert response.headers["Location"] == "/login"


async def test_api_calls_set_no_cookie_and_are_not_cached(client: TestClient, tech: Tech) -> None:
    response = await client.get("/api/v1/sessions", headers=tech.auth)
    assert response.status == 200
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    page = await client.get("/join")
    assert "Set-Cookie" in page.headers  # the join form's CSRF token
