"""Liveness, readiness and Prometheus metrics (web/ops.py, broker/metrics.py)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from .conftest import Tech, join, open_socket, start_session


def figure(text: str, name: str, **labels: str) -> float:
    """One sample's value from the Prometheus text exposition."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "")
    match = re.search(rf"^{pattern} (\S+)$", text, re.MULTILINE)
    assert match, f"{name}{labels} not in\n{text}"
    return float(match.group(1))


async def scrape(client: TestClient) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return await response.text()


async def test_healthz_and_readyz(client: TestClient) -> None:
    alive = await client.get("/healthz")
    assert alive.status == 200
    assert (await alive.json())["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status == 200
    body: dict[str, Any] = await ready.json()
    assert body["checks"] == {"database": "ok"}  # one node: no bus to check


async def test_metrics_count_keys_messages_sockets_and_sessions(client: TestClient,
                                                                tech: Tech) -> None:
    before = await scrape(client)
    assert figure(before, "broker_keys_issued_total") == 0
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    refused = await client.post("/api/v1/join", json={"key": started["key"]})
    assert refused.status == 409
    user = await open_socket(client, started["session_id"], joined["participant_token"])
    technician = await open_socket(client, started["session_id"], tech.token)
    await user.say("hello", "c1")
    await technician.next_event("message")
    await user.say("hello", "c1")  # a resend is no new message
    await user.next("chat.ack")
    await user.next("chat.ack")
    text = await scrape(client)
    assert figure(text, "broker_keys_issued_total") == 1
    assert figure(text, "broker_keys_redeemed_total") == 1
    assert figure(text, "broker_keys_refused_total", reason="key_used") == 1
    assert figure(text, "broker_messages_total") == 1
    assert figure(text, "broker_events_total") >= 3  # created, joined, message
    assert figure(text, "broker_sockets", kind="end_user") == 1
    assert figure(text, "broker_sockets", kind="technician") == 1
    assert figure(text, "broker_sessions", state="active") == 1
    assert figure(text, "broker_sessions", state="waiting") == 0
    assert "broker_bus_lag_seconds_bucket" in text
    assert figure(text, "broker_transfer_bytes_total", direction="in") == 0
    await user.close()
    await technician.close()
