"""The agent's door (issue 17): an agent link admits one agent, and only an agent's own
participant may say agent.hello (docs/agent.md, docs/protocol.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.rtc.agents import NEVER_CONNECTED_SECONDS
from broker.settings import Settings
from web import create_app

from .conftest import Tech, join, open_socket, start_session
from .rtc_support import error_for, ping_pong, send
from .test_agent_broker import agent_link


async def _redeem(client: TestClient, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/v1/agent/join", json=body)
    return response.status, dict(await response.json())


async def _events(client: TestClient, tech: Tech, session_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/sessions/{session_id}/events", headers=tech.auth)
    assert response.status == 200
    return list((await response.json())["events"])


async def _in_chat(client: TestClient, tech: Tech) -> tuple[str, str, str]:
    """A session whose end user chats in a browser: its id, their token, an agent link."""
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    link = await agent_link(client, started["session_id"], joined["participant_token"])
    return started["session_id"], joined["participant_token"], link["link"]


async def test_an_agent_link_admits_one_agent(client: TestClient, tech: Tech) -> None:
    session_id, page_token, link = await _in_chat(client, tech)
    status, first = await _redeem(client, {"link": link})
    assert status == 200
    status, second = await _redeem(client, {"link": link.rsplit("/a/", 1)[1]})
    assert (status, second["error"]) == (409, "key_used")
    # The first agent still works; nobody else was admitted.
    agent = await open_socket(client, session_id, first["participant_token"])
    await ping_pong(agent)
    await agent.close()
    # The chat page can always make a new link, which admits a new agent.
    again = await agent_link(client, session_id, page_token)
    assert (await _redeem(client, {"link": again["link"]}))[0] == 200


async def test_two_redemptions_of_one_link_at_once_admit_one(client: TestClient,
                                                             tech: Tech) -> None:
    _, _, link = await _in_chat(client, tech)
    results = await asyncio.gather(*(_redeem(client, {"link": link}) for _ in range(4)))
    assert sorted(status for status, _ in results) == [200, 409, 409, 409]
    assert {body.get("error") for status, body in results if status == 409} == {"key_used"}


async def test_a_link_whose_agent_never_connected_admits_another(
        client: TestClient, tech: Tech, clock: FakeClock) -> None:
    session_id, _, link = await _in_chat(client, tech)
    status, lost = await _redeem(client, {"link": link})
    assert status == 200
    clock.advance(NEVER_CONNECTED_SECONDS - 1)
    assert (await _redeem(client, {"link": link}))[0] == 409  # it may still be connecting
    clock.advance(2)
    # Two at once after that: one takes the link over, the other finds it used.
    results = await asyncio.gather(*(_redeem(client, {"link": link}) for _ in range(3)))
    assert sorted(status for status, _ in results) == [200, 409, 409]
    (admitted,) = [body for status, body in results if status == 200]
    agent = await open_socket(client, session_id, admitted["participant_token"])
    await send(agent, "agent.hello", version="1", platform="Linux")
    await agent.next_event("agent.connected")
    await agent.close()
    agent_md = (Path(__file__).parent.parent / "docs" / "agent.md").read_text(encoding="utf-8")
    assert f"within {NEVER_CONNECTED_SECONDS:.0f} seconds" in " ".join(agent_md.split())
    # The lost agent's participant is no agent any more: its hello is refused.
    lost_socket = await open_socket(client, session_id, lost["participant_token"])
    assert (await error_for(lost_socket, "agent.hello"))["code"] == "not_agent"
    await lost_socket.close()


@pytest.fixture
async def long_links(aiohttp_client: Any, tmp_path: Path, clock: FakeClock,
                     database_url: str) -> TestClient:
    return await aiohttp_client(create_app(Settings(
        data_dir=tmp_path / "links", database_url=database_url, agent_link_seconds=3600,
        reconnect_window_seconds=60), clock=clock))


async def test_a_link_whose_agent_left_for_good_admits_another(
        long_links: TestClient, clock: FakeClock) -> None:
    from web.state import get_broker

    broker = get_broker(long_links.app)
    technician = await broker.technicians.add("ann@example.com", "Ann", "long enough pw")
    tech = Tech(technician, await broker.technicians.create_token(technician.id))
    session_id, page_token, link = await _in_chat(long_links, tech)
    page = await open_socket(long_links, session_id, page_token)  # the end user stays
    status, first = await _redeem(long_links, {"link": link})
    agent = await open_socket(long_links, session_id, first["participant_token"])
    await send(agent, "agent.hello", version="1", platform="Linux")
    await page.next_event("agent.connected")
    clock.advance(NEVER_CONNECTED_SECONDS + 1)
    assert (await _redeem(long_links, {"link": link}))[0] == 409  # connected: not gone
    await agent.close()
    await page.next_event("agent.disconnected")
    clock.advance(59)
    assert (await _redeem(long_links, {"link": link}))[0] == 409  # it may come back
    clock.advance(2)
    assert (await _redeem(long_links, {"link": link}))[0] == 200
    await page.close()


async def test_agent_hello_from_a_browser_is_refused_and_stores_nothing(
        client: TestClient, tech: Tech) -> None:
    session_id, page_token, _ = await _in_chat(client, tech)
    page = await open_socket(client, session_id, page_token)
    error = await error_for(page, "agent.hello", version="1", platform="Linux")
    assert error["code"] == "not_agent"
    await ping_pong(page)  # the socket lives on
    assert "agent.connected" not in {e["type"] for e in await _events(client, tech, session_id)}
    # Nor may the browser share "as the agent": there is none.
    technician = await open_socket(client, session_id, tech.token)
    assert (await error_for(technician, "share.request", id="s1",
                            source="agent"))["code"] == "no_agent"
    await technician.close()
    await page.close()


async def test_an_agent_that_redeemed_the_key_may_say_hello(client: TestClient,
                                                            tech: Tech) -> None:
    started = await start_session(client, tech)
    status, joined = await _redeem(client, {"key": started["key"], "name": "Dana"})
    assert status == 200 and joined["name"] == "Dana"
    agent = await open_socket(client, started["session_id"], joined["participant_token"])
    await send(agent, "agent.hello", version="1", platform="Linux")
    assert (await agent.next_event("agent.connected"))["platform"] == "Linux"
    await agent.close()
    # Used up like any key redemption; fields of the wrong type are refused.
    status, used = await _redeem(client, {"key": started["key"]})
    assert (status, used["error"]) == (409, "key_used")
    status, wrong = await _redeem(client, {"key": started["key"], "name": 7})
    assert (status, wrong["error"]) == (400, "invalid_input")


async def test_a_browser_that_redeemed_the_key_may_not(client: TestClient,
                                                       tech: Tech) -> None:
    started = await start_session(client, tech)
    joined = await join(client, started["key"])  # POST /api/v1/join: a browser's door
    page = await open_socket(client, started["session_id"], joined["participant_token"])
    assert (await error_for(page, "agent.hello"))["code"] == "not_agent"
    await page.close()


async def test_the_migration_marks_the_agents_that_said_hello(tmp_path: Path,
                                                              database_url: str) -> None:
    """0008 on a database of 0007: participants that said agent.hello become agents."""
    from alembic import command
    from alembic.config import Config

    import broker.db

    url = Settings(data_dir=tmp_path, database_url=database_url).sqlalchemy_url
    engine = broker.db.create_engine(url)

    def upgrade(to: str) -> Callable[[sa.Connection], None]:
        def run(connection: sa.Connection) -> None:
            config = Config()
            config.set_main_option("script_location",
                                   str(Path(broker.db.__file__).parent / "migrations"))
            config.attributes["connection"] = connection
            command.upgrade(config, to)
        return run

    try:
        async with engine.begin() as conn:
            await conn.run_sync(upgrade("0007"))
            for statement in (
                    "INSERT INTO technicians VALUES (1, 'a@example.com', 'A', 'x', false, 0)",
                    "INSERT INTO sessions (id, technician_id, state, created_at) "
                    "VALUES ('s1', 1, 'active', 0)",
                    "INSERT INTO participants VALUES (1, 's1', 'end_user', 'h1', 'Dana', 0)",
                    "INSERT INTO participants VALUES (2, 's1', 'end_user', 'h2', 'Dana', 0)",
                    "INSERT INTO events (session_id, seq, type, sender, body, created_at) "
                    "VALUES ('s1', 1, 'agent.connected', 'p2', '{}', 0)"):
                await conn.execute(sa.text(statement))
            await conn.run_sync(upgrade("head"))
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text(
                "SELECT session_id, participant_id, link_hash FROM agent_participants"))).all()
        assert [tuple(row) for row in rows] == [("s1", 2, None)]
    finally:
        await engine.dispose()
