"""Response targets: the team is alerted at 80 % of a target, a miss is recorded as an
event; counted in business hours where the target says so, with the injected clock."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock

from .conftest import login
from .intake_support import MakeTech, broker_of, customer, json_of, queue_of, submit, team_of
from .intake_support import settings as settings  # noqa: F401 - a fixture

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*parts: int) -> float:
    return dt.datetime(*parts, tzinfo=BERLIN).timestamp()


async def alert(dashboard: ClientWebSocketResponse) -> dict[str, Any]:
    """The next request.alert on a dashboard socket (5 s at most)."""
    while True:
        frame = await dashboard.receive_json(timeout=5)
        if frame["type"] == "request.alert":
            return dict(frame)


async def request_of(client: TestClient, tech: Any, request_id: str) -> Any:
    return await json_of(await client.get(f"/api/v1/requests/{request_id}",
                                          headers=tech.auth), 200)


async def test_alert_at_80_percent_and_breach_across_a_weekend(
        client: TestClient, make_tech: MakeTech, clock: FakeClock) -> None:
    alice = await make_tech("Alice")
    await team_of(client, "Tier 1", alice, online=False)
    await login(client, alice.technician.email)
    dashboard = await client.ws_connect("/api/v1/technician/ws")  # Alice is online now
    try:
        async with asyncio.timeout(5):
            while not broker_of(client).presence.online(alice.technician.id):
                await asyncio.sleep(0.01)
        clock.advance(berlin(2027, 1, 15, 16, 0) - clock.now())  # a Friday, 16:00
        answer = await submit(client)  # standard: two business hours
        waiting = await customer(client, answer)
        request_id = answer["request_id"]
        made = await request_of(client, alice, request_id)
        assert made["due_at"] == "2027-01-18T09:00:00+00:00"  # Monday 10:00 in Berlin
        assert made["alert_at"] == "2027-01-18T08:36:00+00:00"  # 96 business minutes
        sweep = broker_of(client).intake.sweep
        for moment in (berlin(2027, 1, 15, 16, 59), berlin(2027, 1, 17, 23, 0),
                       berlin(2027, 1, 18, 9, 35)):
            clock.advance(moment - clock.now())
            await sweep()
            assert (await request_of(client, alice, request_id))["alerted_at"] is None
        clock.advance(60)  # Monday 09:36
        await sweep()
        due_soon = await alert(dashboard)
        assert due_soon["level"] == "due_soon"
        assert due_soon["request"]["request_id"] == request_id
        assert due_soon["request"]["remaining_seconds"] == 24 * 60
        clock.advance(berlin(2027, 1, 18, 10, 0) - clock.now())
        await sweep()
        breached = await alert(dashboard)
        assert breached["level"] == "breached" and breached["request"]["remaining_seconds"] == 0
        await sweep()  # once only
        events = await json_of(await client.get(
            f"/api/v1/sessions/{answer['session_id']}/events", headers=alice.auth), 200)
        (event,) = [e for e in events["events"] if e["type"] == "request.breached"]
        assert event["author"] is None and event["severity"] == "standard"
        assert (event["due_at"], event["target_seconds"], event["business_hours"]) == (
            "2027-01-18T09:00:00+00:00", 7200, True)
        final = await request_of(client, alice, request_id)
        assert final["breached_at"] == "2027-01-18T09:00:00+00:00"
        assert final["alerted_at"] == "2027-01-18T08:36:00+00:00"
        await waiting.close()
    finally:
        await dashboard.close()


async def _take(client: TestClient, tech: Any) -> str:
    (item,) = await queue_of(client, tech)
    await json_of(await client.post(f"/api/v1/handoffs/{item['handoff_id']}/accept",
                                    headers=tech.auth), 200)
    return str(item["session_id"])


async def test_a_first_line_in_time_meets_the_target(client: TestClient, make_tech: MakeTech,
                                                     clock: FakeClock) -> None:
    alice = await make_tech("Alice")
    await team_of(client, "Tier 1", alice)
    answer = await submit(client, severity="critical")  # an hour, around the clock
    clock.advance(300)
    session_id = await _take(client, alice)
    await broker_of(client).intake.sweep()  # taken is not answered: still counting
    assert (await request_of(client, alice, answer["request_id"]))["first_response_at"] is None
    clock.advance(300)
    await json_of(await client.post(f"/api/v1/sessions/{session_id}/messages",
                                    headers=alice.auth, json={"text": "Hello, Alice here."}),
                  201)
    clock.advance(7200)
    await broker_of(client).intake.sweep()
    done = await request_of(client, alice, answer["request_id"])
    assert done["first_response_at"] == "2027-01-15T08:10:00+00:00"
    assert (done["alerted_at"], done["breached_at"], done["remaining_seconds"]) == (
        None, None, None)


async def test_a_late_first_line_is_a_breach(client: TestClient, make_tech: MakeTech,
                                            clock: FakeClock) -> None:
    alice = await make_tech("Alice")
    await team_of(client, "Tier 1", alice)
    answer = await submit(client, severity="high")
    socket = await customer(client, answer)
    try:
        clock.advance(3660)  # no sweep ran meanwhile: the line comes a minute late
        # The target changes meanwhile: the request keeps the one it was given.
        root = await make_tech("Root", admin=True)
        await json_of(await client.put("/api/v1/intake-form", headers=root.auth, json={
            "severities": [{"level": "high", "target_seconds": 7200}]}), 200)
        session_id = await _take(client, alice)
        await json_of(await client.post(f"/api/v1/sessions/{session_id}/messages",
                                        headers=alice.auth, json={"text": "Sorry!"}), 201)
        await broker_of(client).intake.sweep()
        late = await request_of(client, alice, answer["request_id"])
        assert late["first_response_at"] == "2027-01-15T09:01:00+00:00"
        assert late["breached_at"] is not None and late["alerted_at"] is None
        breach = await socket.next_event("request.breached")
        assert breach["severity"] == "high" and breach["business_hours"] is False
        assert breach["target_seconds"] == 3600
    finally:
        await socket.close()


async def test_no_response_is_owed_once_the_session_ended(
        client: TestClient, make_tech: MakeTech, clock: FakeClock) -> None:
    alice, root = await make_tech("Alice"), await make_tech("Root", admin=True)
    await team_of(client, "Tier 1", alice)
    answer = await submit(client, severity="critical")
    await json_of(await client.post(f"/api/v1/sessions/{answer['session_id']}/end",
                                    headers=root.auth), 200)
    clock.advance(7200)
    await broker_of(client).intake.sweep()
    closed = await request_of(client, alice, answer["request_id"])
    assert closed["status"] == "closed" and closed["breached_at"] is None
