"""What the intake tests share: a broker with quick queue updates, teams with members
online, customers' forms, and their sockets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.core import Broker
from broker.settings import Settings
from web import create_app
from web.state import get_broker

from .conftest import Socket, Tech

MakeTech = Callable[..., Awaitable[Tech]]
Factory = Callable[..., Awaitable[TestClient]]
FORM = {"name": "Carla Kunde", "email": "carla@example.com",
        "description": "The printer prints nothing since this morning."}


def intake_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data", "port": 8080, "database_url": database_url,
        # Places are told at once, and the tests' forms all come from one address.
        "intake_queue_update_seconds": 0.01, "intake_address_burst": 1000,
        "intake_global_per_minute": 1000}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """conftest's `client`, `broker` and technicians, on these settings."""
    return intake_settings(tmp_path, database_url)


@pytest.fixture
def make_client(aiohttp_client: Any, tmp_path: Path, clock: FakeClock,
                database_url: str) -> Factory:
    async def make(**overrides: Any) -> TestClient:
        app = create_app(intake_settings(tmp_path, database_url, **overrides), clock=clock)
        return await aiohttp_client(app)  # type: ignore[no-any-return]

    return make


async def tech_of(client: TestClient, name: str, *, admin: bool = False) -> Tech:
    broker = get_broker(client.app)
    technician = await broker.technicians.add(f"{name.lower()}@example.com", name,
                                              "correct horse battery", is_admin=admin)
    return Tech(technician, await broker.technicians.create_token(technician.id))


async def json_of(response: Any, status: int) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def team_of(client: TestClient, name: str, *members: Tech,
                  online: bool = True) -> int:
    """A team with these members, online (a dashboard open, as the roster counts it)."""
    broker = get_broker(client.app)
    team = await broker.teams.create(name)
    for member in members:
        await broker.teams.add_member(team.id, member.technician.id)
        if online:
            await broker.roster.dashboard_opened(member.technician.id)
    return team.id


async def submit(client: TestClient, status: int = 201, **values: Any) -> Any:
    return await json_of(await client.post("/api/v1/requests", json={**FORM, **values}),
                         status)


async def customer(client: TestClient, answer: dict[str, Any]) -> Socket:
    """The customer's socket, open and caught up (as their chat page opens it). Their
    place in the queue may be told before the replay is over: such frames are skipped."""
    socket = Socket(await client.ws_connect(f"/api/v1/sessions/{answer['session_id']}/ws"))
    try:
        await socket.ws.send_json({"type": "hello", "token": answer["participant_token"]})
        socket.welcome = await socket.next("welcome")
        while True:
            frame = await socket.next()
            if frame["type"] == "synced":
                socket.last_seq = frame["last_seq"]
                return socket
            if frame["type"] == "event":
                socket.replayed.append(frame["event"])
    except BaseException:
        await socket.close()
        raise


async def place(socket: Socket) -> dict[str, Any]:
    """Ask for the customer's place now; the answer (later frames of other types are
    skipped)."""
    await socket.ws.send_json({"type": "queue.ask"})
    return await socket.next("queue.position")


async def until_place(socket: Socket, position: int) -> dict[str, Any]:
    """Read the customer's places as they are told, until `position` (5 s at most)."""
    while True:
        frame = await socket.next("queue.position")
        if frame["position"] == position:
            return frame


async def queue_of(client: TestClient, tech: Tech) -> list[dict[str, Any]]:
    """The waiting items of the technician's first team's queue."""
    queues = await json_of(await client.get("/api/v1/queues", headers=tech.auth), 200)
    return list(queues["queues"][0]["waiting"])


def broker_of(client: TestClient) -> Broker:
    return get_broker(client.app)
