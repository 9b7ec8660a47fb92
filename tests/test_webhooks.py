"""Webhooks end to end: admins register endpoints, a receiver on loopback gets every
event signed per the Standard Webhooks specification (verified by the `standardwebhooks`
package), in order per session, through failures, time-outs and secret rotation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.settings import Settings
from web.state import get_broker

from .conftest import Tech, join, start_session
from .intake_support import submit, team_of
from .webhook_support import FAIL, HANG, OK, Receiver

MakeTech = Callable[..., Awaitable[Tech]]
ALL_SESSION_EVENTS = ["session.created", "session.joined", "session.handed_over",
                      "session.ended", "file.uploaded", "share.started", "share.ended"]


@pytest.fixture
def clock() -> FakeClock:
    # Real time at first: the package verifies timestamps against the wall clock.
    return FakeClock(start=float(int(time.time())))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    webhook_allow_private_targets=True, webhook_http_hosts="127.0.0.1",
                    webhook_poll_seconds=0.05, webhook_timeout_seconds=0.5)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = await Receiver().start()
    yield found
    await found.stop()


@pytest.fixture
async def admin(make_tech: MakeTech) -> Tech:
    return await make_tech("Root", admin=True)


async def register(client: TestClient, admin: Tech, receiver: Receiver,
                   events: list[str] | None = None) -> dict[str, Any]:
    response = await client.post("/api/v1/webhooks", headers=admin.auth, json={
        "url": receiver.url, "events": events or ALL_SESSION_EVENTS,
        "description": "Help desk"})
    assert response.status == 201, await response.text()
    made = dict(await response.json())
    receiver.secrets.append(made["secret"])
    return made


async def log_of(client: TestClient, admin: Tech, webhook_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/webhooks/{webhook_id}/deliveries",
                                headers=admin.auth)
    assert response.status == 200, await response.text()
    return list((await response.json())["deliveries"])


async def settled(client: TestClient, admin: Tech, webhook_id: str,
                  attempts: int) -> dict[str, Any]:
    """The newest delivery once its `attempts`-th attempt is recorded (waited for: the
    broker records it after the receiver answered)."""
    async with asyncio.timeout(5):
        while True:
            log = await log_of(client, admin, webhook_id)
            if log and log[0]["attempts"] == attempts and log[0]["status"] != "sending":
                return log[0]
            await asyncio.sleep(0.02)


async def drive(clock: FakeClock, receiver: Receiver,
                done: Callable[[], bool], *, step: float = 400.0, seconds: float = 30) -> None:
    """Let the broker deliver; when nothing arrives for a moment, move its clock on so the
    next retry falls due (the schedule's delays are minutes to hours)."""
    async with asyncio.timeout(seconds):
        while not done():
            if not await receiver.next_arrival(0.3):
                clock.advance(step)


async def test_admins_manage_webhooks_and_see_the_secret_once(
        client: TestClient, admin: Tech, tech: Tech, receiver: Receiver) -> None:
    made = await register(client, admin, receiver, ["session.ended", "session.created"])
    assert made["secret"].startswith("whsec_") and made["id"].startswith("wh_")
    assert made["events"] == ["session.created", "session.ended"] and made["enabled"]
    listed = await (await client.get("/api/v1/webhooks", headers=admin.auth)).json()
    assert [w["id"] for w in listed["webhooks"]] == [made["id"]]
    assert "secret" not in listed["webhooks"][0]
    assert made["secret"] not in await (await client.get(
        f"/api/v1/webhooks/{made['id']}/deliveries", headers=admin.auth)).text()
    assert set(listed["event_types"]) >= {*ALL_SESSION_EVENTS, "delivery.failed"}
    # Technicians who are not admins reach none of it.
    for method, path in (("GET", "/api/v1/webhooks"), ("POST", "/api/v1/webhooks"),
                         ("PATCH", f"/api/v1/webhooks/{made['id']}"),
                         ("DELETE", f"/api/v1/webhooks/{made['id']}"),
                         ("POST", f"/api/v1/webhooks/{made['id']}/test"),
                         ("GET", f"/api/v1/webhooks/{made['id']}/deliveries")):
        response = await client.request(method, path, headers=tech.auth, json={})
        assert response.status == 403, (method, path)
    changed = await client.patch(f"/api/v1/webhooks/{made['id']}", headers=admin.auth,
                                 json={"events": ["share.started"], "description": "Desk"})
    assert (await changed.json())["events"] == ["share.started"]
    bad = await client.patch(f"/api/v1/webhooks/{made['id']}", headers=admin.auth,
                             json={"events": ["session.exploded"]})
    assert bad.status == 400 and (await bad.json())["error"] == "invalid_events"
    assert (await client.delete(f"/api/v1/webhooks/{made['id']}",
                                headers=admin.auth)).status == 204
    gone = await client.get(f"/api/v1/webhooks/{made['id']}/deliveries", headers=admin.auth)
    assert gone.status == 404


async def test_a_session_s_events_arrive_signed_and_in_order(
        client: TestClient, admin: Tech, tech: Tech, receiver: Receiver) -> None:
    made = await register(client, admin, receiver)
    started = await start_session(client, tech)
    session_id = started["session_id"]
    await join(client, started["key"])
    response = await client.post(f"/api/v1/sessions/{session_id}/messages",
                                 headers=tech.auth, json={"text": "hello"})
    assert response.status == 201
    assert (await client.post(f"/api/v1/sessions/{session_id}/end",
                              headers=tech.auth)).status == 200
    await receiver.wait_for(lambda got: len(got) >= 3)
    assert receiver.first_order(session_id) == [
        "session.created", "session.joined", "session.ended"]
    assert not receiver.unverified
    events = list(receiver.unique().values())
    for arrival in receiver.arrivals:
        assert arrival.event["id"] == arrival.headers["webhook-id"]
        assert arrival.headers["content-type"] == "application/json"
    created, joined, ended = events
    assert created["data"]["session"]["technician"] == {
        "id": tech.technician.id, "name": "Alice", "email": tech.technician.email}
    assert created["data"]["key_expires_at"].endswith("+00:00")
    assert joined["data"]["actor"]["role"] == "end_user"
    assert ended["data"]["reason"] and ended["data"]["session_id"] == session_id
    log = await log_of(client, admin, made["id"])
    async with asyncio.timeout(10):  # the answer arrives before the broker records it
        while any(d["status"] == "sending" for d in log):
            await asyncio.sleep(0.02)
            log = await log_of(client, admin, made["id"])
    assert [(d["type"], d["status"], d["attempts"], d["response_status"]) for d in log] == [
        ("session.ended", "delivered", 1, 200), ("session.joined", "delivered", 1, 200),
        ("session.created", "delivered", 1, 200)]
    # A test event, on request, whatever the subscription.
    test = await client.post(f"/api/v1/webhooks/{made['id']}/test", headers=admin.auth)
    assert test.status == 202
    await receiver.wait_for(lambda got: len(got) >= 4)
    assert receiver.arrivals[-1].event["type"] == "webhook.test"


async def test_failures_and_time_outs_are_retried_until_every_event_arrived_once(
        client: TestClient, admin: Tech, tech: Tech, receiver: Receiver,
        clock: FakeClock) -> None:
    await register(client, admin, receiver, ["session.created", "session.joined",
                                             "session.ended"])
    # Down, then hanging past the broker's time limit, then back: in no particular order.
    receiver.plan.extend([FAIL, FAIL, HANG, FAIL, HANG, OK, FAIL, OK, HANG, FAIL, FAIL])
    sessions = []
    for _ in range(4):
        started = await start_session(client, tech)
        await join(client, started["key"])
        sessions.append(started["session_id"])
    for session_id in sessions:
        await client.post(f"/api/v1/sessions/{session_id}/end", headers=tech.auth)
    await drive(clock, receiver, lambda: len(receiver.unique()) >= 12 and not receiver.plan)
    assert len(receiver.unique()) == 12
    assert len(receiver.arrivals) > 12  # some arrived twice (a time-out after receipt)
    for session_id in sessions:
        assert receiver.first_order(session_id) == [
            "session.created", "session.joined", "session.ended"]
    assert not receiver.unverified


async def test_retries_grow_and_a_failing_endpoint_holds_up_no_other(
        client: TestClient, admin: Tech, tech: Tech, clock: FakeClock) -> None:
    down, up = await Receiver(default=FAIL).start(), await Receiver().start()
    try:
        failing = await register(client, admin, down, ["session.created"])
        await register(client, admin, up, ["session.created"])
        start = clock.now()
        await start_session(client, tech)
        await up.wait_for(lambda got: len(got) == 1)
        await down.wait_for(lambda got: len(got) == 1)
        waits = []
        for attempt, expected_wait in enumerate((5, 300, 1800, 7200), start=1):
            entry = await settled(client, admin, failing["id"], attempt)
            assert entry["status"] == "retrying"
            assert entry["response_status"] == 500 and entry["error"] == "HTTP 500"
            waits.append(clock_of(entry["next_attempt_at"]) - clock.now())
            clock.advance(expected_wait - 1)
            assert not await down.next_arrival(0.2)  # not due yet
            clock.advance(1)
            assert await down.next_arrival(5)
        assert waits == [5, 300, 1800, 7200]
        assert len(up.arrivals) == 1 and clock.now() - start == 9305
    finally:
        await down.stop()
        await up.stop()


def clock_of(iso: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(iso).timestamp()


async def test_rotation_signs_with_both_secrets_during_the_grace_period(
        client: TestClient, admin: Tech, tech: Tech, receiver: Receiver,
        clock: FakeClock) -> None:
    made = await register(client, admin, receiver, ["session.created"])
    old = made["secret"]
    rotated = await client.post(f"/api/v1/webhooks/{made['id']}/rotate", headers=admin.auth)
    assert rotated.status == 200
    new = (await rotated.json())["secret"]
    assert new.startswith("whsec_") and new != old
    await start_session(client, tech)
    await receiver.wait_for(lambda got: len(got) == 1)
    assert len(receiver.arrivals[0].signatures) == 2
    for secret in (old, new):  # a receiver that knows either one verifies
        only = Receiver()
        only.secrets.append(secret)
        only._check(receiver.arrivals[0])
        assert not only.unverified
    clock.advance(24 * 3600 + 1)  # the grace period is over
    await start_session(client, tech)
    await receiver.wait_for(lambda got: len(got) == 2)
    assert len(receiver.arrivals[1].signatures) == 1
    stale = Receiver()
    stale.secrets.append(old)
    stale._check(receiver.arrivals[1])
    assert stale.unverified
    listed = await (await client.get("/api/v1/webhooks", headers=admin.auth)).json()
    assert listed["webhooks"][0]["previous_secret_valid_until"] is None


async def test_a_customer_s_request_and_its_missed_target(
        client: TestClient, admin: Tech, make_tech: MakeTech, receiver: Receiver,
        clock: FakeClock) -> None:
    await register(client, admin, receiver, ["request.created", "request.target_breached",
                                             "session.created"])
    await team_of(client, "Tier 1", await make_tech("Alice"))
    answer = await submit(client, severity="high")
    clock.advance(3660)  # the first answer was due within the hour
    await get_broker(client.app).intake.sweep()
    await receiver.wait_for(lambda got: len(receiver.unique()) == 2)
    created, breached = receiver.unique().values()
    assert (created["type"], breached["type"]) == ("request.created", "request.target_breached")
    assert created["data"]["session_id"] == answer["session_id"] == breached["data"]["session_id"]
    assert created["data"]["request"] == {"team": "Tier 1", "severity": "high",
                                          "due_at": breached["data"]["request"]["due_at"]}
    assert created["data"]["session"]["technician"] is None  # in the queue, nobody's yet
    assert breached["data"]["request"]["target_seconds"] == 3600
    assert not receiver.unverified
