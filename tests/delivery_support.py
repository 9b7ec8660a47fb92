"""Shared by the key delivery tests: a broker wired to the fake Twilio and an SMTP port,
and the calls that send a key and wait for its delivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.settings import Settings
from web import create_app
from web.state import get_broker

from .conftest import PASSWORD, Tech
from .fakes.smtp import free_port
from .fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

Factory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def make_client(aiohttp_client: Any, tmp_path: Path, clock: FakeClock, twilio: FakeTwilio,
                smtp_port: int, database_url: str) -> Factory:
    """A broker wired to the fake Twilio and to an SMTP server on `smtp_port`."""

    async def make(**overrides: Any) -> TestClient:
        port = free_port()
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data", "port": port,
            "public_url": f"http://127.0.0.1:{port}", "sms_default_country": "DE",
            "twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": AUTH_TOKEN,
            "twilio_from": "+15005550006", "twilio_api_base": twilio.url,
            "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_tls": "none",
            "mail_from": "help@example.com", "product_name": "Acme Help",
            "delivery_poll_seconds": 0.05, "smtp_timeout_seconds": 5,
            "database_url": database_url}
        values.update(overrides)
        app = create_app(Settings(**values), clock=clock)
        return await aiohttp_client(app, server_kwargs={"port": port})  # type: ignore[no-any-return]

    return make


async def _tech(client: TestClient, email: str = "alice@example.com") -> Tech:
    broker = get_broker(client.app)
    technician = await broker.technicians.add(email, "Alice Ärger", PASSWORD)
    return Tech(technician, await broker.technicians.create_token(technician.id))


async def _send(client: TestClient, tech: Tech, session_id: str, **body: Any) -> Any:
    return await client.post(f"/api/v1/sessions/{session_id}/deliveries", headers=tech.auth,
                             json=body)


async def _until(client: TestClient, tech: Tech, session_id: str, delivery_id: str,
                 *statuses: str) -> dict[str, Any]:
    """Poll the list until the delivery reaches one of `statuses` (bounded: 10 s)."""
    async with asyncio.timeout(10):
        while True:
            response = await client.get(f"/api/v1/sessions/{session_id}/deliveries",
                                        headers=tech.auth)
            found = {d["delivery_id"]: d for d in (await response.json())["deliveries"]}
            if found[delivery_id]["status"] in statuses:
                return found[delivery_id]
            await asyncio.sleep(0.02)
