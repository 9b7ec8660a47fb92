"""Reconnect windows: a dropped end user has 10 minutes to come back, nothing is lost,
and broker restarts (graceful or not) end only sessions whose window really passed."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.schema import sessions
from broker.settings import Settings
from web import create_app
from web.state import get_broker

from .conftest import Tech, join, open_socket, start_session

WINDOW = 600


async def _session(client: TestClient, tech: Tech, session_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/sessions/{session_id}", headers=tech.auth)
    return dict(await response.json())


async def _active(client: TestClient, tech: Tech) -> tuple[str, str]:
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    return started["session_id"], joined["participant_token"]


async def test_drop_starts_the_window_and_return_ends_it(client: TestClient, tech: Tech,
                                                         clock: FakeClock) -> None:
    session_id, token = await _active(client, tech)
    technician = await open_socket(client, session_id, tech.token)
    user = await open_socket(client, session_id, token)
    try:
        assert (await technician.next("presence"))["end_user"] is False
        assert (await technician.next("presence")) == {
            "type": "presence", "technician": True, "end_user": True}
        await user.close()
        assert (await technician.next("presence"))["end_user"] is False
        dropped = await technician.next_event("disconnected")
        assert dropped["author"]["role"] == "end_user"
        state = await _session(client, tech, session_id)
        assert state["state"] == "reconnecting"
        assert state["reconnect_deadline"] == dropped["deadline"]
        clock.advance(WINDOW - 1)
        await technician.say("Are you still there?", "t1")
        assert await get_broker(client.app).sessions.window.end_lapsed() == 0
        user = await open_socket(client, session_id, token, after=dropped["seq"] - 1)
        replayed = [(e["type"], e.get("text")) for e in user.replayed]
        assert replayed == [("disconnected", None), ("message", "Are you still there?"),
                            ("reconnected", None)]
        assert (await technician.next_event("reconnected"))["author"]["role"] == "end_user"
        state = await _session(client, tech, session_id)
        assert state["state"] == "active" and state["reconnect_deadline"] is None
    finally:
        await technician.close()
        await user.close()


async def test_window_passes_and_a_late_return_sees_the_end(client: TestClient, tech: Tech,
                                                            clock: FakeClock) -> None:
    session_id, token = await _active(client, tech)
    user = await open_socket(client, session_id, token)
    await user.close()
    broker = get_broker(client.app)
    # The broker notices the close a moment after the client is done with it.
    while (await _session(client, tech, session_id))["state"] != "reconnecting":
        await asyncio.sleep(0.01)
    clock.advance(WINDOW)
    assert await broker.sessions.window.end_lapsed() == 1
    state = await _session(client, tech, session_id)
    assert state["state"] == "ended" and state["end_reason"] == "reconnect_timeout"
    late = await open_socket(client, session_id, token)
    try:
        assert late.replayed[-1]["type"] == "ended"
        assert late.replayed[-1]["reason"] == "reconnect_timeout"
        assert await late.close_code() == 4010
    finally:
        await late.close()
    client.session.cookie_jar.update_cookies({f"sb_participant_{session_id}": token})
    page = await client.get(f"/s/{session_id}")
    assert page.status == 200  # the chat page, which shows the end and its reason


async def test_replacing_a_socket_is_no_drop(client: TestClient, tech: Tech) -> None:
    session_id, token = await _active(client, tech)
    first = await open_socket(client, session_id, token)
    second = await open_socket(client, session_id, token)
    try:
        assert await first.close_code() == 4000
        state = await _session(client, tech, session_id)
        assert state["state"] == "active"
        await second.say("still here", "s1")
        assert (await second.next("chat.ack"))["id"] == "s1"
    finally:
        await first.close()
        await second.close()


async def test_end_user_sees_the_technician_come_and_go(client: TestClient, tech: Tech) -> None:
    session_id, token = await _active(client, tech)
    user = await open_socket(client, session_id, token)
    try:
        assert (await user.next("presence"))["technician"] is False
        technician = await open_socket(client, session_id, tech.token)
        assert (await user.next("presence"))["technician"] is True
        await technician.close()
        assert (await user.next("presence"))["technician"] is False
        assert (await _session(client, tech, session_id))["state"] == "active"
    finally:
        await user.close()


async def test_graceful_shutdown_says_going_away_and_keeps_the_deadline(
        aiohttp_client: Any, settings: Settings, clock: FakeClock, tech: Tech,
        client: TestClient) -> None:
    session_id, token = await _active(client, tech)
    user = await open_socket(client, session_id, token)
    await client.server.close()  # graceful: sockets are closed with GOING_AWAY
    assert await user.close_code() == 1001
    await user.close()
    async with get_broker(client.app).engine.connect() as conn:
        deadline = await conn.scalar(sa.select(sessions.c.reconnect_deadline))
    assert deadline == clock.now() + WINDOW
    await client.close()

    clock.advance(300)
    restarted = await aiohttp_client(create_app(settings, clock=clock))
    state = await _session(restarted, tech, session_id)
    assert state["state"] == "reconnecting"  # the stored deadline, not a fresh window
    clock.advance(300)
    assert await get_broker(restarted.app).sessions.window.end_lapsed() == 1


async def test_crash_restart_gives_active_sessions_a_window(
        aiohttp_client: Any, settings: Settings, clock: FakeClock, tech: Tech,
        client: TestClient) -> None:
    session_id, token = await _active(client, tech)
    # As after kill -9: the database says active, and no socket said goodbye.
    async with get_broker(client.app).engine.connect() as conn:
        state = await conn.scalar(sa.select(sessions.c.state))
    assert state == "active"
    await client.close()  # no socket was open, so nothing was written on the way down

    clock.advance(100)
    restarted = await aiohttp_client(create_app(settings, clock=clock))
    state = await _session(restarted, tech, session_id)
    assert state["state"] == "reconnecting"
    assert state["reconnect_deadline"].startswith("2027-01-15")  # now + 600 s, ISO 8601
    user = await open_socket(restarted, session_id, token)
    try:
        assert user.replayed[-1]["type"] == "reconnected"
        assert user.replayed[-2]["reason"] == "broker_restart"
        assert (await _session(restarted, tech, session_id))["state"] == "active"
    finally:
        await user.close()


async def test_technician_can_end_a_reconnecting_session(client: TestClient,
                                                        tech: Tech) -> None:
    session_id, token = await _active(client, tech)
    user = await open_socket(client, session_id, token)
    await user.close()
    async with asyncio.timeout(10):  # the broker notices the closed socket after its close
        while (await _session(client, tech, session_id))["state"] != "reconnecting":
            await asyncio.sleep(0.02)
    response = await client.post(f"/api/v1/sessions/{session_id}/end", headers=tech.auth)
    assert (await response.json())["state"] == "ended"
