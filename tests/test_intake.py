"""Customers' requests: from the form into a team's queue, waiting there (typing, sending
files, hearing of their place), and taken by exactly one technician."""

from __future__ import annotations

import asyncio
import base64

from aiohttp.test_utils import TestClient

from broker.clock import FakeClock

from .intake_support import (
    Factory,
    MakeTech,
    broker_of,
    customer,
    json_of,
    place,
    queue_of,
    submit,
    team_of,
    tech_of,
    until_place,
)
from .intake_support import make_client as make_client  # noqa: F401 - a fixture
from .intake_support import settings as settings  # noqa: F401 - a fixture


async def test_a_request_waits_in_the_queue_with_its_form(client: TestClient,
                                                         make_tech: MakeTech) -> None:
    alice = await make_tech("Alice")
    team_id = await team_of(client, "Tier 1", alice)
    answer = await submit(client, team="tier-1", phone="+49 30 1234567", severity="critical")
    assert answer["status"] == "waiting" and answer["online"] is True
    assert answer["position"] == 1 and answer["estimated_wait_seconds"] is None
    assert answer["join_url"].endswith(f"/s/{answer['session_id']}")
    assert answer["participant_token"].startswith("sbp_")
    (item,) = await queue_of(client, alice)
    assert item["session_id"] == answer["session_id"] and item["from"]["id"] is None
    assert item["from"]["name"] == "Carla Kunde" and item["to_team"]["id"] == team_id
    request = item["request"]
    assert request["request_id"] == answer["request_id"] and request["status"] == "waiting"
    assert request["severity"] == "critical" and request["phone"] == "+49301234567"
    assert request["description"] == "The printer prints nothing since this morning."
    assert item["due_at"] == request["due_at"] and request["remaining_seconds"] == 3600
    # Offered to Alice: she reads the session, the transcript and the form before taking it.
    on_session = await json_of(await client.get(
        f"/api/v1/sessions/{answer['session_id']}/request", headers=alice.auth), 200)
    assert on_session["request"]["request_id"] == answer["request_id"]
    events = await json_of(await client.get(
        f"/api/v1/sessions/{answer['session_id']}/events", headers=alice.auth), 200)
    (opened,) = events["events"]
    assert opened["type"] == "request.opened" and opened["team"] == "Tier 1"
    assert opened["severity"] == "critical" and opened["author"]["name"] == "Carla Kunde"


async def test_the_customer_types_and_sends_files_while_waiting(client: TestClient,
                                                               make_tech: MakeTech) -> None:
    alice = await make_tech("Alice")
    await team_of(client, "Tier 1", alice)
    answer = await submit(client)  # the only team: no need to name it
    socket = await customer(client, answer)
    try:
        assert socket.welcome["session"]["technician"] == {"id": None, "name": None}
        assert socket.welcome["session"]["state"] == "active"
        assert (await place(socket))["position"] == 1
        await socket.say("Hello? It is urgent.", "c1")
        assert (await socket.next("chat.ack"))["id"] == "c1"
        name = base64.b64encode(b"error.txt").decode()
        upload = await client.post(
            f"/api/v1/sessions/{answer['session_id']}/files/",
            headers={"Authorization": f"Bearer {answer['participant_token']}",
                     "Tus-Resumable": "1.0.0", "Upload-Length": "5",
                     "Upload-Metadata": f"filename {name}"})
        assert upload.status == 201, await upload.text()
        session = answer["session_id"]
        accepted = await json_of(await client.post(
            f"/api/v1/handoffs/{(await queue_of(client, alice))[0]['handoff_id']}/accept",
            headers=alice.auth), 200)
        assert accepted["technician"]["name"] == "Alice" and accepted["session_id"] == session
        handed = await socket.next_event("handed_over")
        assert (handed["from"], handed["to"], handed["from_id"]) == ("Tier 1", "Alice", None)
        # Alice reads what was written while the customer waited.
        events = await json_of(await client.get(f"/api/v1/sessions/{session}/events",
                                                headers=alice.auth), 200)
        assert "Hello? It is urgent." in [e.get("text") for e in events["events"]]
    finally:
        await socket.close()


async def test_two_technicians_accepting_at_once_one_wins(client: TestClient,
                                                         make_tech: MakeTech) -> None:
    alice, bob = await make_tech("Alice"), await make_tech("Bob")
    await team_of(client, "Tier 1", alice, bob)
    answer = await submit(client)
    (item,) = await queue_of(client, alice)
    url = f"/api/v1/handoffs/{item['handoff_id']}/accept"
    first, second = await asyncio.gather(client.post(url, headers=alice.auth),
                                         client.post(url, headers=bob.auth))
    assert sorted([first.status, second.status]) == [200, 409]
    loser = second if second.status == 409 else first
    assert (await loser.json())["error"] == "handoff_taken"
    winner = alice if first.status == 200 else bob
    request = await json_of(await client.get(f"/api/v1/requests/{answer['request_id']}",
                                             headers=winner.auth), 200)
    assert request["status"] == "accepted" and request["accepted_by"] == winner.technician.id
    assert await queue_of(client, alice) == []


async def test_places_move_up_as_others_are_served(make_client: Factory,
                                                   clock: FakeClock) -> None:
    # No passes of their own: the test makes each one, and counts whom it tells.
    client = await make_client(intake_queue_update_seconds=3600)
    alice, root = await tech_of(client, "Alice"), await tech_of(client, "Root", admin=True)
    team_id = await team_of(client, "Tier 1", alice)
    tell = broker_of(client).intake.queue.tell
    answers = []
    for n in range(4):
        clock.advance(1)  # arrival decides between equal due times
        answers.append(await submit(client, name=f"Customer {n}"))
    assert [a["position"] for a in answers] == [1, 2, 3, 4]
    assert await tell(team_id) == 4 and await tell(team_id) == 0
    sockets = [await customer(client, answer) for answer in answers]
    try:
        assert [(await place(s))["position"] for s in sockets] == [1, 2, 3, 4]
        # The second is served first (a technician may take any): only those behind it move.
        waiting = await queue_of(client, alice)
        clock.advance(30)
        await json_of(await client.post(f"/api/v1/handoffs/{waiting[1]['handoff_id']}/accept",
                                        headers=alice.auth), 200)
        assert await tell(team_id) == 2
        moved = [await s.next("queue.position") for s in sockets[2:]]
        assert [m["position"] for m in moved] == [2, 3]
        # One pick-up 30 s ago: measured over at least a minute, a minute per place.
        assert [m["estimated_wait_seconds"] for m in moved] == [120, 180]
        # A critical request jumps the queue: everyone waiting moves down one.
        urgent = await submit(client, severity="critical")
        assert urgent["position"] == 1 and await tell(team_id) == 4
        pushed = [await s.next("queue.position") for s in (sockets[0], *sockets[2:])]
        assert [p["position"] for p in pushed] == [2, 3, 4]
        # The first no longer waits for anyone's answer: the session ends, the rest move up.
        await sockets[0].close()
        await json_of(await client.post(f"/api/v1/sessions/{answers[0]['session_id']}/end",
                                        headers=root.auth), 200)
        assert await tell(team_id) == 2
        after = [await s.next("queue.position") for s in sockets[2:]]
        assert [p["position"] for p in after] == [2, 3]
        closed = await json_of(await client.get(
            f"/api/v1/requests/{answers[0]['request_id']}", headers=alice.auth), 200)
        assert closed["status"] == "closed" and closed["closed_at"] is not None
    finally:
        for socket in sockets:
            await socket.close()


async def test_places_are_told_by_themselves(client: TestClient, make_tech: MakeTech,
                                             clock: FakeClock) -> None:
    """Without anyone asking: a pick-up reaches the customers behind it within moments."""
    alice = await make_tech("Alice")
    await team_of(client, "Tier 1", alice)
    first = await submit(client)
    clock.advance(1)
    second = await customer(client, await submit(client, name="Second"))
    try:
        assert (await place(second))["position"] == 2
        (item, _) = await queue_of(client, alice)
        assert item["session_id"] == first["session_id"]
        await json_of(await client.post(f"/api/v1/handoffs/{item['handoff_id']}/accept",
                                        headers=alice.auth), 200)
        assert await until_place(second, 1)
    finally:
        await second.close()


async def test_a_customer_sees_only_their_own_request(client: TestClient,
                                                      make_tech: MakeTech) -> None:
    alice, bob = await make_tech("Alice"), await make_tech("Bob")
    await team_of(client, "Tier 1", alice)
    await team_of(client, "Tier 2", bob)
    mine = await submit(client, team="Tier 1")
    other = await submit(client, team="tier-2", name="Someone Else")
    auth = {"Authorization": f"Bearer {mine['participant_token']}"}
    own = await json_of(await client.get(f"/api/v1/requests/{mine['request_id']}",
                                         headers=auth), 200)
    assert own == {"request_id": mine["request_id"], "status": "waiting",
                   "session_id": mine["session_id"], "severity": "standard",
                   "position": 1, "estimated_wait_seconds": None}
    refused = await client.get(f"/api/v1/requests/{other['request_id']}", headers=auth)
    assert refused.status == 403 and (await refused.json())["error"] == "forbidden"
    assert (await client.get("/api/v1/requests/made-up", headers=auth)).status == 404
    assert (await client.get("/api/v1/requests", headers=auth)).status == 403
    assert (await client.get(f"/api/v1/sessions/{other['session_id']}/events",
                             headers=auth)).status == 403
    # Bob (another team) neither sees the request nor its session.
    assert (await client.get(f"/api/v1/requests/{mine['request_id']}",
                             headers=bob.auth)).status == 403
    listed = await json_of(await client.get("/api/v1/requests", headers=bob.auth), 200)
    assert [r["request_id"] for r in listed["requests"]] == [other["request_id"]]
    assert (await client.get(f"/api/v1/sessions/{mine['session_id']}/request",
                             headers=bob.auth)).status == 403
    # A socket of the customer's may ask only for its own place (it has no other).
    socket = await customer(client, mine)
    try:
        assert (await place(socket))["position"] == 1
    finally:
        await socket.close()


async def test_a_customer_who_never_connects_leaves_the_queue(
        make_client: Factory, clock: FakeClock) -> None:
    client = await make_client(intake_queue_update_seconds=3600)
    alice = await tech_of(client, "Alice")
    await team_of(client, "Tier 1", alice)
    gone = await submit(client)
    clock.advance(1)
    here = await submit(client, name="Present")
    socket = await customer(client, here)
    try:
        clock.advance(598)  # the first waits 599 s
        await broker_of(client).intake.sweep()
        assert len(await queue_of(client, alice)) == 2  # within the reconnect window
        clock.advance(2)
        await broker_of(client).intake.sweep()
        (left,) = await queue_of(client, alice)
        assert left["session_id"] == here["session_id"]
        assert await until_place(socket, 1)  # told by the sweep
        ended = await json_of(await client.get(f"/api/v1/requests/{gone['request_id']}",
                                               headers=alice.auth), 200)
        assert ended["status"] == "closed"
    finally:
        await socket.close()


async def test_queue_ask_outside_a_queue_is_refused(client: TestClient,
                                                    make_tech: MakeTech) -> None:
    alice = await make_tech("Alice")
    await team_of(client, "Tier 1", alice)
    answer = await submit(client)
    socket = await customer(client, answer)
    try:
        (item,) = await queue_of(client, alice)
        await json_of(await client.post(f"/api/v1/handoffs/{item['handoff_id']}/accept",
                                        headers=alice.auth), 200)
        await socket.next_event("handed_over")
        await socket.ws.send_json({"type": "queue.ask"})
        error = await socket.next("error")
        assert error["code"] == "not_queued"
    finally:
        await socket.close()
