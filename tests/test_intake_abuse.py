"""Floods of public forms: limits per address and for everyone, a cap per queue that
leaves technicians' own sessions alone."""

from __future__ import annotations

from typing import Any

from broker.clock import FakeClock

from .conftest import join, start_session
from .intake_support import Factory, json_of, queue_of, submit, team_of, tech_of
from .intake_support import make_client as make_client  # noqa: F401 - a fixture


async def test_forms_are_limited_per_address(make_client: Factory, clock: FakeClock) -> None:
    client = await make_client(intake_address_burst=2, intake_address_per_hour=60,
                               trust_forwarded_for=True)
    await team_of(client, "Tier 1", await tech_of(client, "Alice"))

    async def post(address: str) -> Any:
        return await client.post("/api/v1/requests", headers={"X-Forwarded-For": address},
                                 json={"name": "Ann", "description": "Help",
                                       "email": "a@example.com"})

    for _ in range(2):
        await json_of(await post("203.0.113.7"), 201)
    refused = await post("203.0.113.7")
    assert refused.status == 429 and (await refused.json())["error"] == "rate_limited"
    assert refused.headers["Retry-After"] == "60"  # sixty an hour: one a minute
    await json_of(await post("203.0.113.8"), 201)  # another address, its own allowance
    clock.advance(60)
    await json_of(await post("203.0.113.7"), 201)


async def test_forms_are_limited_for_everyone(make_client: Factory, clock: FakeClock) -> None:
    client = await make_client(intake_global_per_minute=3, trust_forwarded_for=True)
    for n in range(3):
        # Offline: messages count as much as chats.
        await json_of(await client.post("/api/v1/requests", headers={
            "X-Forwarded-For": f"198.51.100.{n}"}, json={
            "description": "Hi", "email": "a@example.com", "team": "1"}), 400)
    refused = await client.post("/api/v1/requests", headers={
        "X-Forwarded-For": "198.51.100.9"}, json={"description": "Hi"})
    assert refused.status == 429 and refused.headers["Retry-After"] == "20"
    clock.advance(20)
    assert (await client.post("/api/v1/requests", headers={
        "X-Forwarded-For": "198.51.100.9"}, json={"description": "Hi"})).status == 400


async def test_a_full_queue_refuses_requests_but_not_technicians(make_client: Factory) -> None:
    client = await make_client(intake_max_waiting=2)
    alice = await tech_of(client, "Alice")
    await team_of(client, "Tier 1", alice)
    await submit(client)
    await submit(client)
    refused = await client.post("/api/v1/requests", json={
        "name": "Ann", "email": "ann@example.com", "description": "Me too"})
    assert refused.status == 429 and (await refused.json())["error"] == "queue_full"
    assert refused.headers["Retry-After"] == "60"
    assert len(await queue_of(client, alice)) == 2
    # Requests count apart: the technicians' own sessions start and are joined as ever.
    for _ in range(3):
        await join(client, (await start_session(client, alice))["key"])
    # Taking one from the queue makes room.
    (item, _) = await queue_of(client, alice)
    await json_of(await client.post(f"/api/v1/handoffs/{item['handoff_id']}/accept",
                                    headers=alice.auth), 200)
    await submit(client)
