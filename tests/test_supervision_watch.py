"""Watching a live session read-only (docs/supervision.md): the watch socket replays the
session's events and sends the new ones, the session's technician is told who watches and
when they stop, both are in the audit log, and nobody outside the supervisor's teams
gets in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientSession, CookieJar, WSMsgType
from aiohttp.test_utils import TestClient

from tests.conftest import Tech, join, open_socket, start_session
from tests.test_supervision import _call, _lead, _login, _team

MakeTech = Callable[..., Awaitable[Tech]]


async def _frame(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        frame = await ws.receive_json(timeout=5)
        if frame["type"] == kind:
            return dict(frame)


async def test_a_lead_watches_the_chat_and_the_technician_is_told(
        client: TestClient, make_tech: MakeTech) -> None:
    root = await make_tech("Root", admin=True)
    anna, bob = await make_tech("Anna"), await make_tech("Bob")
    team = await _team(client, root, "Printers", anna, bob)
    await _lead(client, root, team, anna)
    started = await start_session(client, bob)
    session_id = started["session_id"]
    joined = await join(client, started["key"])
    tech = await open_socket(client, session_id, bob.token)
    user = await open_socket(client, session_id, joined["participant_token"])
    await user.say("My printer prints blank pages", "c1")
    await tech.next_event("message")
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        await _login(client, http, anna.technician.email)
        page = await http.get(client.make_url(f"/supervise/{session_id}"))
        assert page.status == 200
        ws = await http.ws_connect(client.make_url(f"/api/v1/sessions/{session_id}/watch"))
        replayed = []
        while (frame := await ws.receive_json(timeout=5))["type"] != "synced":
            replayed.append(frame["event"])
        assert [e["type"] for e in replayed] == ["created", "joined", "message"]
        assert replayed[-1]["text"] == "My printer prints blank pages"
        told = await tech.next("supervisor.watching")
        assert (told["supervisor"]["name"], told["watching"]) == ("Anna", True)
        # Live: the chat as it happens; what the watcher writes is refused.
        await ws.send_json({"type": "chat.send", "id": "x", "text": "I am not here"})
        assert (await _frame(ws, "error"))["code"] == "read_only"
        await tech.say("Let me look", "t1")
        assert (await _frame(ws, "event"))["event"]["text"] == "Let me look"
        await ws.close()
    stopped = await tech.next("supervisor.watching")
    assert (stopped["supervisor"]["name"], stopped["watching"]) == ("Anna", False)
    events = await _call(client, "GET", f"/api/v1/sessions/{session_id}/events", bob)
    assert [e["text"] for e in events["events"] if e["type"] == "message"] == [
        "My printer prints blank pages", "Let me look"]
    records = (await _call(
        client, "GET", "/api/v1/audit?action=supervisor.watch_started,supervisor.watch_stopped",
        root))["records"]
    assert [(r["action"], r["actor"]["name"], r["session_id"], r["details"]["supervisor"])
            for r in reversed(records)] == [
        ("supervisor.watch_started", "Anna", session_id, "Anna"),
        ("supervisor.watch_stopped", "Anna", session_id, "Anna")]
    await tech.close()
    await user.close()


async def test_nobody_watches_a_session_outside_their_teams(
        client: TestClient, make_tech: MakeTech) -> None:
    root = await make_tech("Root", admin=True)
    anna, bob, carl = await make_tech("Anna"), await make_tech("Bob"), await make_tech("Carl")
    printers = await _team(client, root, "Printers", anna)
    await _team(client, root, "Network", bob)
    await _lead(client, root, printers, anna)  # Anna leads a team, not Bob's
    started = await start_session(client, bob)
    session_id = started["session_id"]
    for who in (anna, bob, carl):  # another team's lead, its own technician, a technician
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
            await _login(client, http, who.technician.email)
            ws = await http.ws_connect(client.make_url(f"/api/v1/sessions/{session_id}/watch"))
            frame = await ws.receive_json(timeout=5)
            assert (frame["type"], frame["code"]) == ("error", "forbidden"), who
            closing = await ws.receive(timeout=5)
            assert closing.type == WSMsgType.CLOSE and closing.data == 4403
            page = await http.get(client.make_url(f"/supervise/{session_id}"),
                                  allow_redirects=False)
            assert page.status == 403
    # Without a login: 4401.
    async with ClientSession() as http:
        ws = await http.ws_connect(client.make_url(f"/api/v1/sessions/{session_id}/watch"))
        assert (await ws.receive_json(timeout=5))["code"] == "unauthenticated"
        assert (await ws.receive(timeout=5)).data == 4401
    records = (await _call(client, "GET", "/api/v1/audit?action=supervisor.watch_started",
                           root))["records"]
    assert records == []
