"""Supervisors (docs/supervision.md): team leads set by admins, the board of live sessions
(API and socket) for admins and team leads, and nobody else."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientSession, CookieJar, WSMsgType
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.core import Broker
from tests.conftest import PASSWORD, Tech, join, open_socket, start_session
from tests.rtc_support import send

MakeTech = Callable[..., Awaitable[Tech]]


async def _call(client: TestClient, method: str, path: str, who: Tech, *,
                ok: int = 200, **kwargs: Any) -> Any:
    response = await client.request(method, path, headers=who.auth, **kwargs)
    assert response.status == ok, await response.text()
    return await response.json()


async def _team(client: TestClient, admin: Tech, name: str, *members: Tech) -> int:
    team = await _call(client, "POST", "/api/v1/teams", admin, ok=201, json={"name": name})
    for member in members:
        await _call(client, "POST", f"/api/v1/teams/{team['team_id']}/members", admin,
                    json={"technician_id": member.technician.id})
    return int(team["team_id"])


async def _lead(client: TestClient, admin: Tech, team_id: int, who: Tech,
                lead: bool = True) -> dict[str, Any]:
    return dict(await _call(client, "PATCH",
                            f"/api/v1/teams/{team_id}/members/{who.technician.id}", admin,
                            json={"lead": lead}))


async def test_admins_make_team_leads_and_it_is_audited(
        client: TestClient, make_tech: MakeTech) -> None:
    root = await make_tech("Root", admin=True)
    anna, bob, carl = await make_tech("Anna"), await make_tech("Bob"), await make_tech("Carl")
    team = await _team(client, root, "Printers", anna, bob)
    assert (await _lead(client, root, team, anna))["lead_ids"] == [anna.technician.id]
    await _lead(client, root, team, anna)  # again: no change, no record
    # Only members lead; only admins say who; the field is a boolean.
    response = await client.patch(f"/api/v1/teams/{team}/members/{carl.technician.id}",
                                  headers=root.auth, json={"lead": True})
    assert response.status == 409 and (await response.json())["error"] == "not_a_member"
    response = await client.patch(f"/api/v1/teams/{team}/members/{bob.technician.id}",
                                  headers=anna.auth, json={"lead": True})
    assert response.status == 403
    response = await client.patch(f"/api/v1/teams/{team}/members/{bob.technician.id}",
                                  headers=root.auth, json={"lead": "yes"})
    assert response.status == 400
    listing = await _call(client, "GET", "/api/v1/technicians", root)
    leads = {entry["name"]: entry["lead_team_ids"] for entry in listing["technicians"]}
    assert leads["Anna"] == [team] and leads["Bob"] == []
    assert (await _lead(client, root, team, anna, lead=False))["lead_ids"] == []
    records = (await _call(client, "GET", "/api/v1/audit?action=admin.team_lead_changed",
                           root))["records"]
    assert [(r["actor"]["name"], r["details"]["technician_id"], r["details"]["lead"])
            for r in reversed(records)] == [("Root", anna.technician.id, True),
                                  ("Root", anna.technician.id, False)]


async def test_the_board_shows_a_leads_teams_live_sessions_and_admins_all(
        client: TestClient, make_tech: MakeTech, clock: FakeClock) -> None:
    root = await make_tech("Root", admin=True)
    anna, bob, carl = await make_tech("Anna"), await make_tech("Bob"), await make_tech("Carl")
    team = await _team(client, root, "Printers", anna, bob)
    await _lead(client, root, team, anna)
    bobs = await start_session(client, bob)
    carls = await start_session(client, carl)  # not in Anna's team
    clock.advance(30)
    await join(client, bobs["key"])
    clock.advance(90)
    ended = await start_session(client, bob)
    await _call(client, "POST", f"/api/v1/sessions/{ended['session_id']}/end", bob)

    board = await _call(client, "GET", "/api/v1/supervision", anna)
    assert board["everyone"] is False and board["team_ids"] == [team]
    [entry] = board["sessions"]
    assert entry["session_id"] == bobs["session_id"]
    assert (entry["state"], entry["technician"]["name"], entry["sharing"]) == (
        "active", "Bob", False)
    assert (entry["wait_seconds"], entry["duration_seconds"]) == (30, 90)

    everything = await _call(client, "GET", "/api/v1/supervision", root)
    assert {e["session_id"] for e in everything["sessions"]} == {
        bobs["session_id"], carls["session_id"]}
    waiting = next(e for e in everything["sessions"] if e["session_id"] == carls["session_id"])
    assert (waiting["state"], waiting["wait_seconds"], waiting["duration_seconds"]) == (
        "waiting", 120, None)
    # Not a lead: refused, on the API and the page.
    for who in (bob, carl):
        response = await client.get("/api/v1/supervision", headers=who.auth)
        assert response.status == 403
    # Anna no longer leads: refused too.
    await _lead(client, root, team, anna, lead=False)
    assert (await client.get("/api/v1/supervision", headers=anna.auth)).status == 403


async def _login(client: TestClient, http: ClientSession, email: str) -> None:
    page = await http.get(client.make_url("/login"))
    html = await page.text()
    csrf = html.split('name="_csrf" value="', 1)[1].split('"', 1)[0]
    response = await http.post(client.make_url("/login"), data={
        "email": email, "password": PASSWORD, "_csrf": csrf}, allow_redirects=False)
    assert response.status == 303


async def _next_entry(ws: Any) -> dict[str, Any]:
    while True:
        frame = await ws.receive_json(timeout=5)
        if frame["type"] == "supervision.update":
            return dict(frame["entry"])


async def test_the_board_socket_sends_the_teams_changes_and_refuses_others(
        client: TestClient, broker: Broker, make_tech: MakeTech) -> None:
    root = await make_tech("Root", admin=True)
    anna, bob, carl = await make_tech("Anna"), await make_tech("Bob"), await make_tech("Carl")
    team = await _team(client, root, "Printers", anna, bob)
    await _lead(client, root, team, anna)
    first = await start_session(client, bob)
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as lead, \
            ClientSession(cookie_jar=CookieJar(unsafe=True)) as other:
        await _login(client, lead, anna.technician.email)
        ws = await lead.ws_connect(client.make_url("/api/v1/supervision/ws"))
        assert (await _next_entry(ws))["session_id"] == first["session_id"]
        await start_session(client, carl)  # another team's: not sent
        second = await start_session(client, bob)
        entry = await _next_entry(ws)
        assert (entry["session_id"], entry["state"], entry["live"]) == (
            second["session_id"], "waiting", True)
        await _call(client, "POST", f"/api/v1/sessions/{second['session_id']}/end", bob)
        entry = await _next_entry(ws)
        assert (entry["session_id"], entry["live"]) == (second["session_id"], False)
        await ws.close()
        # Carl leads nothing: the socket says forbidden and closes with 4403.
        await _login(client, other, carl.technician.email)
        ws = await other.ws_connect(client.make_url("/api/v1/supervision/ws"))
        frame = await ws.receive_json(timeout=5)
        assert (frame["type"], frame["code"]) == ("error", "forbidden")
        closing = await ws.receive(timeout=5)
        assert closing.type == WSMsgType.CLOSE and closing.data == 4403
        page = await other.get(client.make_url("/supervise"), allow_redirects=False)
        assert page.status == 403
        dashboard = await (await other.get(client.make_url("/dashboard"))).text()
        assert 'href="/supervise"' not in dashboard
        dashboard = await (await lead.get(client.make_url("/dashboard"))).text()
        assert 'href="/supervise"' in dashboard


async def test_the_board_says_while_a_screen_is_shared(
        client: TestClient, make_tech: MakeTech) -> None:
    root = await make_tech("Root", admin=True)
    bob = await make_tech("Bob")
    started = await start_session(client, bob)
    joined = await join(client, started["key"])
    tech = await open_socket(client, started["session_id"], bob.token)
    user = await open_socket(client, started["session_id"], joined["participant_token"])
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        await _login(client, http, root.technician.email)
        ws = await http.ws_connect(client.make_url("/api/v1/supervision/ws"))
        assert (await _next_entry(ws))["sharing"] is False
        await send(tech, "share.request", id="s1", direction="end_user_to_technician")
        await send(user, "share.consent", id="s1", accept=True)
        await send(user, "share.start", id="s1")
        await tech.next_event("share.started")
        while not (entry := await _next_entry(ws))["sharing"]:
            pass  # the request and the consent: not shared yet
        assert entry["session_id"] == started["session_id"]
        board = await _call(client, "GET", "/api/v1/supervision", root)
        assert [e["sharing"] for e in board["sessions"]] == [True]
        await send(user, "share.stop", id="s1")
        assert (await _next_entry(ws))["sharing"] is False
        await ws.close()
    await tech.close()
    await user.close()
