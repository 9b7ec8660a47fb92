"""The broker's side of the native agent: agent links, the agent's presence, agent shares
and remote-control consent (docs/agent.md, docs/protocol.md "Remote control")."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from broker.clock import FakeClock

from .conftest import Socket, Tech, join, open_socket, start_session
from .rtc_support import error_for, ping_pong, send


async def agent_link(client: TestClient, session_id: str, token: str) -> dict[str, Any]:
    response = await client.post(f"/api/v1/sessions/{session_id}/agent-link",
                                 headers={"Authorization": f"Bearer {token}"})
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def agent_join(client: TestClient, link: str) -> dict[str, Any]:
    response = await client.post("/api/v1/agent/join", json={"link": link})
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def with_agent(client: TestClient, tech: Tech) -> tuple[Socket, Socket, Socket, str]:
    """A session with the end user's page, their agent (said hello) and the technician."""
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    session_id = started["session_id"]
    link = await agent_link(client, session_id, joined["participant_token"])
    admitted = await agent_join(client, link["link"])
    page = await open_socket(client, session_id, joined["participant_token"])
    technician = await open_socket(client, session_id, tech.token)
    agent = await open_socket(client, session_id, admitted["participant_token"])
    await send(agent, "agent.hello", version="0.1.0", platform="Linux")
    connected = await technician.next_event("agent.connected")
    assert connected["platform"] == "Linux"
    assert connected["author"]["sender"] == agent.welcome["you"]["sender"]
    return page, technician, agent, session_id


async def test_an_agent_link_admits_the_agent_as_the_end_users_second_participant(
        client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    link = await agent_link(client, started["session_id"], joined["participant_token"])
    assert "/a/" in link["link"]
    assert link["command"].endswith(" " + link["link"])
    assert link["command"].startswith("pipx run")
    admitted = await agent_join(client, link["link"])
    assert admitted["session_id"] == started["session_id"]
    assert admitted["name"] == "Guest"
    assert admitted["participant_token"] != joined["participant_token"]
    # Its own participant: both sockets stay open side by side.
    page = await open_socket(client, started["session_id"], joined["participant_token"])
    agent = await open_socket(client, started["session_id"], admitted["participant_token"])
    assert agent.welcome["you"]["role"] == "end_user"
    assert agent.welcome["you"]["sender"] != page.welcome["you"]["sender"]
    await ping_pong(page)
    await ping_pong(agent)
    await page.close()
    await agent.close()


async def test_agent_links_are_for_the_end_user_sealed_and_short_lived(
        client: TestClient, tech: Tech, clock: FakeClock) -> None:
    started = await start_session(client, tech)
    session_id = started["session_id"]
    # The technician cannot make one, nor can anybody before the end user joined.
    response = await client.post(f"/api/v1/sessions/{session_id}/agent-link", headers=tech.auth)
    assert response.status == 403
    assert (await response.json())["error"] == "token_not_accepted"  # an end user's route
    joined = await join(client, started["key"])
    link = await agent_link(client, session_id, joined["participant_token"])
    token = link["link"].rsplit("/", 1)[-1]
    forged = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
    for bad in (forged, "nonsense", ""):
        response = await client.post("/api/v1/agent/join", json={"link": bad})
        assert response.status in (400, 404), bad
        assert (await response.json())["error"] in ("key_unknown", "key_malformed")
    clock.advance(601)
    response = await client.post("/api/v1/agent/join", json={"link": link["link"]})
    assert response.status == 410
    assert (await response.json())["error"] == "key_expired"
    # The bare token works as well as the whole link, while it is valid.
    link = await agent_link(client, session_id, joined["participant_token"])
    assert (await agent_join(client, link["link"].rsplit("/a/", 1)[1]))["session_id"] == \
        session_id
    await client.post(f"/api/v1/sessions/{session_id}/end", headers=tech.auth)
    response = await client.post("/api/v1/agent/join", json={"link": link["link"]})
    assert response.status == 409
    assert (await response.json())["error"] == "session_ended"


async def test_both_sides_see_the_agent_come_and_go(client: TestClient, tech: Tech) -> None:
    page, technician, agent, _ = await with_agent(client, tech)
    assert (await page.next_event("agent.connected"))["version"] == "0.1.0"
    await agent.close()
    for socket in (page, technician):
        gone = await socket.next_event("agent.disconnected")
        assert gone["author"]["sender"] == agent.welcome["you"]["sender"]
    # The technician still only sees the end user as present: their page is open.
    await page.close()
    await technician.close()


async def test_agent_shares_go_to_the_agent_and_browser_shares_to_the_page(
        client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    await join(client, started["key"])
    alone = await open_socket(client, started["session_id"], tech.token)
    error = await error_for(alone, "share.request", id="a1", source="agent")
    assert error["code"] == "no_agent"
    await alone.close()
    page, technician, agent, _ = await with_agent(client, tech)
    await send(technician, "share.request", id="b1", source="browser")
    requested = await technician.next_event("share.requested")
    assert requested["sharer"] == page.welcome["you"]["sender"]
    assert requested["control"] == "none"
    await send(technician, "share.stop", id="b1", reason="cancelled")
    await technician.next_event("share.stopped")
    await send(technician, "share.request", id="a2", source="agent")
    requested = await agent.next_event("share.requested")
    while requested["share_id"] != "a2":
        requested = await agent.next_event("share.requested")
    assert requested["sharer"] == agent.welcome["you"]["sender"]
    assert requested["source"] == "agent"
    # The page is not the sharing side of the agent's share.
    error = await error_for(page, "share.consent", id="a2", accept=True)
    assert error["code"] == "not_share_peer"
    error = await error_for(technician, "share.request", id="a3", source="agent",
                            direction="technician_to_end_user")
    assert error["code"] == "invalid_input"
    for socket in (page, technician, agent):
        await socket.close()


async def test_control_needs_the_agents_consent_and_either_side_ends_it(
        client: TestClient, tech: Tech) -> None:
    page, technician, agent, _ = await with_agent(client, tech)
    await send(technician, "share.request", id="c1", source="agent")
    await agent.next_event("share.requested")
    # No control before the screen is shared at all.
    assert (await error_for(technician, "control.request", id="c1"))["code"] == \
        "share_not_consented"
    await send(agent, "share.consent", id="c1", accept=True)
    await send(agent, "share.start", id="c1")
    await technician.next_event("share.started")

    assert (await error_for(agent, "control.request", id="c1"))["code"] == "wrong_peer"
    assert (await error_for(agent, "control.consent", id="c1", accept=True))["code"] == \
        "illegal_transition"
    await send(technician, "control.request", id="c1")
    requested = await agent.next_event("control.requested")
    assert requested["control"] == "requested"
    assert (await error_for(technician, "control.consent", id="c1", accept=True))["code"] == \
        "wrong_peer"
    assert (await error_for(technician, "control.request", id="c1"))["code"] == \
        "illegal_transition"
    await send(agent, "control.consent", id="c1", accept=False)
    refused = await technician.next_event("control.refused")
    assert refused["control"] == "none"

    await send(technician, "control.request", id="c1")
    await agent.next_event("control.requested")
    await send(agent, "control.consent", id="c1", accept=True)
    granted = await technician.next_event("control.granted")
    assert granted["control"] == "granted"
    assert granted["author"]["sender"] == agent.welcome["you"]["sender"]
    await send(agent, "control.stop", id="c1", reason="hotkey")
    stopped = await technician.next_event("control.stopped")
    assert (stopped["reason"], stopped["control"]) == ("hotkey", "none")

    # Ending the share ends control with it, said as its own event first.
    await send(technician, "control.request", id="c1")
    await send(agent, "control.consent", id="c1", accept=True)
    await technician.next_event("control.granted")
    await send(technician, "share.stop", id="c1")
    stopped = await agent.next_event("control.stopped")
    while stopped["reason"] != "share_stopped":
        stopped = await agent.next_event("control.stopped")
    assert (await agent.next_event())["type"] == "share.stopped"
    assert (await error_for(technician, "control.request", id="c1"))["code"] == "share_ended"
    for socket in (page, technician, agent):
        await socket.close()


async def test_browser_shares_cannot_be_controlled(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    technician = await open_socket(client, started["session_id"], tech.token)
    page = await open_socket(client, started["session_id"], joined["participant_token"])
    await send(technician, "share.request", id="d1")
    await send(page, "share.consent", id="d1", accept=True)
    await technician.next_event("share.consented")
    error = await error_for(technician, "control.request", id="d1")
    assert error["code"] == "control_unavailable"
    assert (await error_for(technician, "agent.hello"))["code"] == "end_user_only"
    assert (await error_for(page, "agent.hello", version="x" * 41))["code"] == "bad_message"
    await technician.close()
    await page.close()


async def test_coming_back_after_the_window_but_before_the_sweep_is_too_late(
        client: TestClient, tech: Tech, clock: FakeClock) -> None:
    """An agent resuming a moment after the deadline, before the sweep ended the session,
    finds it ended (reconnect_timeout), not revived."""
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    technician = await open_socket(client, started["session_id"], tech.token)
    agent = await open_socket(client, started["session_id"], joined["participant_token"])
    await agent.close()
    await technician.next_event("disconnected")
    clock.advance(601)
    back = await open_socket(client, started["session_id"], joined["participant_token"],
                             after=agent.last_seq)
    assert back.welcome["session"]["state"] == "ended"
    assert [e["type"] for e in back.replayed][-1] == "ended"
    assert back.replayed[-1]["reason"] == "reconnect_timeout"
    assert await back.close_code() == 4010
    ended = await technician.next_event("ended")
    assert ended["reason"] == "reconnect_timeout"
    await technician.close()
