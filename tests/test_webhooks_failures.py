"""What webhooks tell about failures, and what failing does to them: a key delivery that
failed is a `delivery.failed` event; an endpoint that fails for a day is disabled and the
admins' dashboards are told; redirects are not followed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.settings import Settings
from broker.webhooks.model import RETRY_DELAYS

from .conftest import Tech, login, start_session
from .fakes.smtp import free_port
from .test_webhooks import admin as admin  # noqa: F401,PLC0414 - a fixture
from .test_webhooks import log_of, register, settled
from .test_webhooks import receiver as receiver  # noqa: F401,PLC0414 - a fixture
from .webhook_support import FAIL, REDIRECT, Receiver


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=float(int(time.time())))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # Email to an SMTP port where nothing listens: every key sent by email fails.
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    webhook_allow_private_targets=True, webhook_http_hosts="127.0.0.1",
                    webhook_poll_seconds=0.05, webhook_timeout_seconds=0.5,
                    email_backend="smtp", smtp_host="127.0.0.1", smtp_port=free_port(),
                    smtp_tls="none", mail_from="support@example.com",
                    delivery_max_attempts=1, delivery_poll_seconds=0.05)


async def test_a_failed_key_delivery_is_a_delivery_failed_event(
        client: TestClient, admin: Tech, tech: Tech, receiver: Receiver) -> None:
    await register(client, admin, receiver, ["delivery.failed"])
    started = await start_session(client, tech)
    response = await client.post(f"/api/v1/sessions/{started['session_id']}/deliveries",
                                 headers=tech.auth,
                                 json={"channel": "email", "to": "dana@example.com"})
    assert response.status == 202, await response.text()
    await receiver.wait_for(lambda got: len(got) == 1)
    event = receiver.arrivals[0].event
    assert event["type"] == "delivery.failed" and not receiver.unverified
    delivery = event["data"]["delivery"]
    assert event["data"]["session_id"] == started["session_id"]
    assert delivery["channel"] == "email" and delivery["recipient"] == "dana@example.com"
    assert "mail server could not be reached" in delivery["error"]
    assert delivery["id"] == (await response.json())["delivery_id"]


async def test_an_endpoint_failing_for_a_day_is_disabled_and_the_admins_are_told(
        client: TestClient, admin: Tech, tech: Tech, clock: FakeClock) -> None:
    down = await Receiver(default=FAIL).start()
    try:
        made = await register(client, admin, down, ["session.created"])
        await login(client, admin.technician.email)
        dashboard = await client.ws_connect("/api/v1/technician/ws")
        await start_session(client, tech)
        for attempt, delay in enumerate(RETRY_DELAYS, start=1):
            assert (await settled(client, admin, made["id"], attempt))["status"] == "retrying"
            clock.advance(delay)
        assert (await settled(client, admin, made["id"], 8))["status"] == "failed"
        assert len(down.arrivals) == 8  # 27 h 35 min after the first attempt
        while True:
            frame = await dashboard.receive_json(timeout=5)
            if frame["type"] == "webhook.disabled":
                break
        assert frame["webhook"]["id"] == made["id"]
        assert "Every delivery failed for 24 hours (last: HTTP 500)" in frame["webhook"]["reason"]
        await dashboard.close()
        listed = (await (await client.get("/api/v1/webhooks", headers=admin.auth)).json())
        assert not listed["webhooks"][0]["enabled"]
        assert listed["webhooks"][0]["disabled_reason"] == frame["webhook"]["reason"]
        log = await log_of(client, admin, made["id"])
        assert [(d["status"], d["attempts"]) for d in log] == [("failed", 8)]
        # While disabled nothing is queued for it; enabled again, it starts afresh.
        await start_session(client, tech)
        clock.advance(1)
        enabled = await client.patch(f"/api/v1/webhooks/{made['id']}", headers=admin.auth,
                                     json={"enabled": True})
        assert (await enabled.json())["enabled"] and (await enabled.json())["failing_since"] \
            is None
        down.default = "ok"
        await start_session(client, tech)
        await down.wait_for(lambda got: len(got) == 9)
        assert (await settled(client, admin, made["id"], 1))["status"] == "delivered"
        assert [d["status"] for d in await log_of(client, admin, made["id"])] == [
            "delivered", "failed"]
    finally:
        await down.stop()


async def test_redirects_are_not_followed(client: TestClient, admin: Tech, tech: Tech,
                                          receiver: Receiver, clock: FakeClock) -> None:
    made = await register(client, admin, receiver, ["session.created"])
    receiver.plan.append(REDIRECT)
    await start_session(client, tech)
    await receiver.wait_for(lambda got: len(got) == 1)
    entry = await settled(client, admin, made["id"], 1)
    assert entry["response_status"] == 302 and "not followed" in entry["error"]
    assert [a.headers.get("webhook-id") for a in receiver.arrivals] == [entry["event_id"]]
    clock.advance(RETRY_DELAYS[0])
    await receiver.wait_for(lambda got: len(got) == 2)  # the retry goes to the URL itself
    assert [a.path for a in receiver.arrivals] == ["/hook", "/hook"]
