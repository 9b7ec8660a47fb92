"""Shared fixtures: a real broker on a loopback server, a fake clock, technicians."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from broker.clock import FakeClock
from broker.core import Broker
from broker.settings import Settings
from broker.technicians import Technician
from web import create_app
from web.state import get_broker

PASSWORD = "correct horse battery"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """Where a test's broker keeps its data (see database_for_tests)."""
    async with database_for_tests() as url:
        yield url


@pytest.fixture
def aiohttp_client(database_url: str, aiohttp_client: Any) -> Any:
    """pytest-aiohttp's, set up after the test's database, so that every broker it served
    stops (and writes what it writes at its close, such as the audit log's last counts)
    before that database is dropped, whatever order a fixture names them in."""
    return aiohttp_client


@contextlib.asynccontextmanager
async def database_for_tests() -> AsyncIterator[str]:
    """"" (SQLite in the broker's data directory) or, when BROKER_TEST_DATABASE_URL names
    a PostgreSQL database, a schema of its own there.

    Each user (a test, or a module's broker) gets a new role with a schema of the same
    name, which PostgreSQL's default search_path ("$user", public) puts first; both are
    dropped afterwards."""
    base = os.environ.get("BROKER_TEST_DATABASE_URL", "")
    if not base or _in_private_network():
        # The media and agent tests run in a network namespace with only loopback
        # (tests/netns.py), where no database server can be reached: SQLite there.
        yield ""
        return
    if not _reachable(base):
        reason = f"BROKER_TEST_DATABASE_URL={base}: nothing answers there"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    async with postgres_schema(base) as url:
        yield url


def _network_namespace() -> str:
    try:
        return os.readlink("/proc/thread-self/ns/net")
    except OSError:
        return ""


_HOME_NETWORK = _network_namespace()  # before any test makes a namespace of its own


def _in_private_network() -> bool:
    """Whether this thread has entered a network namespace of its own."""
    return _network_namespace() != _HOME_NETWORK


def _reachable(url: str) -> bool:
    parts = make_url(url)
    try:
        with socket.create_connection((parts.host or "127.0.0.1", parts.port or 5432), 1):
            return True
    except OSError:
        return False


@contextlib.asynccontextmanager
async def postgres_schema(base: str) -> AsyncIterator[str]:
    """A fresh role and schema in the PostgreSQL database `base`; yields its URL."""
    name = "t_" + secrets.token_hex(6)
    admin_url = Settings(database_url=base).sqlalchemy_url
    admin = create_async_engine(admin_url, poolclass=NullPool)
    try:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f"CREATE ROLE {name} LOGIN"))
            await conn.execute(sa.text(f"CREATE SCHEMA {name} AUTHORIZATION {name}"))
        yield make_url(base).set(username=name, password=None).render_as_string(
            hide_password=False)
    finally:
        async with admin.begin() as conn:
            await conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :n"),
                {"n": name})
            await conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
            await conn.execute(sa.text(f"DROP ROLE IF EXISTS {name}"))
        await admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", port=8080, database_url=database_url)


@dataclasses.dataclass
class Tech:
    technician: Technician
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
async def client(settings: Settings, clock: FakeClock, aiohttp_client: Any) -> TestClient:
    # aiohttp_client last: set up after the database, it stops the broker before the
    # database's schema is dropped (fixtures are torn down in reverse).
    return await aiohttp_client(create_app(settings, clock=clock))


@pytest.fixture
def broker(client: TestClient) -> Broker:
    return get_broker(client.app)


@pytest.fixture
def make_tech(broker: Broker) -> Callable[..., Awaitable[Tech]]:
    counter = iter(range(1, 1000))

    async def make(name: str | None = None, *, admin: bool = False) -> Tech:
        n = next(counter)
        technician = await broker.technicians.add(
            f"tech{n}@example.com", name or f"Tech {n}", PASSWORD, is_admin=admin)
        return Tech(technician, await broker.technicians.create_token(technician.id))

    return make


@pytest.fixture
async def tech(make_tech: Callable[..., Awaitable[Tech]]) -> Tech:
    return await make_tech("Alice")


async def start_session(client: TestClient, tech: Tech) -> dict[str, Any]:
    response = await client.post("/api/v1/sessions", headers=tech.auth)
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def join(client: TestClient, key: str) -> dict[str, Any]:
    response = await client.post("/api/v1/join", json={"key": key})
    assert response.status == 200, await response.text()
    return dict(await response.json())


def csrf_from(html: str) -> str:
    match = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


async def login(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Log in through the form like a browser; returns the dashboard's CSRF token."""
    page = await client.get("/login")
    response = await client.post("/login", data={
        "email": email, "password": password, "_csrf": csrf_from(await page.text())},
        allow_redirects=False)
    assert response.status == 303, await response.text()
    dashboard = await client.get("/dashboard")
    match = re.search(r'data-csrf="([^"]+)"', await dashboard.text())
    assert match
    return match.group(1)


class Socket:
    """A test's session socket: the frames up to `synced` are read on open."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.welcome: dict[str, Any] = {}
        self.replayed: list[dict[str, Any]] = []
        self.last_seq = 0

    async def next(self, kind: str | None = None, seconds: float = 5) -> dict[str, Any]:
        """The next frame (of type `kind`, skipping others)."""
        while True:
            frame = dict(await self.ws.receive_json(timeout=seconds))
            if kind is None or frame["type"] == kind:
                return frame

    async def next_event(self, event_type: str | None = None) -> dict[str, Any]:
        while True:
            frame = await self.next("event")
            if event_type is None or frame["event"]["type"] == event_type:
                return dict(frame["event"])

    async def say(self, text: str, client_id: str) -> None:
        await self.ws.send_json({"type": "chat.send", "id": client_id, "text": text})

    async def close_code(self, seconds: float = 5) -> int | None:
        """Read on until the server closes; the code it sent (None if it sent none)."""
        while True:
            message = await self.ws.receive(timeout=seconds)
            if message.type == WSMsgType.CLOSE:
                return int(message.data)
            if message.type in (WSMsgType.CLOSED, WSMsgType.ERROR):
                return None

    async def close(self) -> None:
        await self.ws.close()


async def open_socket(client: TestClient, session_id: str, token: str | None,
                      after: int = 0) -> Socket:
    socket = Socket(await client.ws_connect(f"/api/v1/sessions/{session_id}/ws"))
    try:
        await socket.ws.send_json({"type": "hello", "token": token, "after": after})
        socket.welcome = await socket.next()
        assert socket.welcome["type"] == "welcome", socket.welcome
        while True:
            frame = await socket.next()
            if frame["type"] == "synced":
                socket.last_seq = frame["last_seq"]
                return socket
            socket.replayed.append(frame["event"])
    except BaseException:
        await socket.close()
        raise
