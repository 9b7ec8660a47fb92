"""Handoff: transfers with a note, team queues, collaboration, notes and the roster. Owners
who are gone (orphans) and seats: test_handoff_owners.py."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from web.state import get_broker

from .conftest import login, open_socket
from .handoff_support import MakeTech, _active, _json, _team, _transfer


async def test_transfer_with_note_accepted_on_the_same_connection(
        client: TestClient, make_tech: MakeTech) -> None:
    alice, bob = await make_tech("Alice"), await make_tech("Bob")
    session_id, token = await _active(client, alice)
    user = await open_socket(client, session_id, token)
    try:
        await client.post(f"/api/v1/sessions/{session_id}/messages", headers=alice.auth,
                          json={"text": "Let me get a colleague."})
        offered = await _json(await _transfer(client, alice, session_id,
                                              to_technician_id=bob.technician.id), 201)
        assert offered["state"] == "pending" and offered["to_technician"]["name"] == "Bob"
        # Bob reads the note and the transcript before accepting, but cannot write yet.
        mine = await _json(await client.get("/api/v1/handoffs", headers=bob.auth), 200)
        assert [h["note"] for h in mine["handoffs"]] == [offered["note"]]
        events = await _json(await client.get(f"/api/v1/sessions/{session_id}/events",
                                              headers=bob.auth), 200)
        assert "Let me get a colleague." in [e.get("text") for e in events["events"]]
        write = await client.post(f"/api/v1/sessions/{session_id}/messages",
                                  headers=bob.auth, json={"text": "hi"})
        assert write.status == 403
        accepted = await _json(await client.post(
            f"/api/v1/handoffs/{offered['handoff_id']}/accept", headers=bob.auth), 200)
        assert accepted["technician"]["name"] == "Bob"
        handed = await user.next_event("handed_over")
        assert (handed["from"], handed["to"]) == ("Alice", "Bob")
        assert "note" not in handed  # the note is for technicians only
        await client.post(f"/api/v1/sessions/{session_id}/messages", headers=bob.auth,
                          json={"text": "Hello, Bob here."})
        assert (await user.next_event("message"))["text"] == "Hello, Bob here."
        # Alice handed it over without staying: she is out.
        gone = await client.get(f"/api/v1/sessions/{session_id}/events", headers=alice.auth)
        assert gone.status == 403
    finally:
        await user.close()


async def test_sender_may_stay_as_collaborator(client: TestClient, make_tech: MakeTech) -> None:
    alice, bob = await make_tech("Alice"), await make_tech("Bob")
    session_id, _ = await _active(client, alice)
    offered = await _json(await _transfer(client, alice, session_id, keep_sender=True,
                                          to_technician_id=bob.technician.id), 201)
    await _json(await client.post(f"/api/v1/handoffs/{offered['handoff_id']}/accept",
                                  headers=bob.auth), 200)
    stays = await client.post(f"/api/v1/sessions/{session_id}/messages", headers=alice.auth,
                              json={"text": "I am still here."})
    assert stays.status == 201
    cannot_end = await client.post(f"/api/v1/sessions/{session_id}/end", headers=alice.auth)
    assert cannot_end.status == 403  # collaborators write; the owner ends


async def test_decline_and_timeout_return_the_session(client: TestClient, make_tech: MakeTech,
                                                      clock: FakeClock) -> None:
    alice, bob = await make_tech("Alice"), await make_tech("Bob")
    session_id, _ = await _active(client, alice)
    offered = await _json(await _transfer(client, alice, session_id,
                                          to_technician_id=bob.technician.id), 201)
    again = await _transfer(client, alice, session_id, to_technician_id=bob.technician.id)
    assert (await _json(again, 409))["error"] == "handoff_pending"
    declined = await _json(await client.post(
        f"/api/v1/handoffs/{offered['handoff_id']}/decline", headers=bob.auth,
        json={"reason": "Not my area, sorry."}), 200)
    assert declined["state"] == "declined" and declined["reason"] == "Not my area, sorry."
    late = await client.post(f"/api/v1/handoffs/{offered['handoff_id']}/accept",
                             headers=bob.auth)
    assert (await _json(late, 409))["error"] == "handoff_taken"

    second = await _json(await _transfer(client, alice, session_id,
                                         to_technician_id=bob.technician.id), 201)
    clock.advance(119)
    assert await get_broker(client.app).handoffs.expire_due() == 0
    clock.advance(1)
    assert await get_broker(client.app).handoffs.expire_due() == 1
    history = await _json(await client.get(f"/api/v1/sessions/{session_id}/handoffs",
                                           headers=alice.auth), 200)
    assert [h["state"] for h in history["handoffs"]] == ["declined", "expired"]
    assert "2 minutes" in history["handoffs"][1]["reason"]
    assert second["handoff_id"] == history["handoffs"][1]["handoff_id"]
    session = await _json(await client.get(f"/api/v1/sessions/{session_id}",
                                           headers=alice.auth), 200)
    assert session["technician"]["name"] == "Alice"


async def test_racing_accepts_exactly_one_wins(client: TestClient, make_tech: MakeTech) -> None:
    alice, bob = await make_tech("Alice"), await make_tech("Bob")
    session_id, _ = await _active(client, alice)
    offered = await _json(await _transfer(client, alice, session_id,
                                          to_technician_id=bob.technician.id), 201)
    url = f"/api/v1/handoffs/{offered['handoff_id']}/accept"
    responses = await asyncio.gather(*(client.post(url, headers=bob.auth) for _ in range(5)))
    assert sorted(r.status for r in responses) == [200, 409, 409, 409, 409]


async def test_queue_pick_up_exactly_once(client: TestClient, make_tech: MakeTech,
                                          clock: FakeClock) -> None:
    admin = await make_tech("Root", admin=True)
    alice, bob, carol, dave = [await make_tech(n) for n in ("Alice", "Bob", "Carol", "Dave")]
    tier2 = await _team(client, admin, "Tier 2", bob, carol)
    first, _ = await _active(client, alice)
    clock.advance(30)
    second, _ = await _active(client, alice)
    a = await _json(await _transfer(client, alice, first, to_team_id=tier2), 201)
    clock.advance(5)
    await _json(await _transfer(client, alice, second, to_team_id=tier2), 201)
    clock.advance(10)
    queues = await _json(await client.get("/api/v1/queues", headers=bob.auth), 200)
    (queue,) = queues["queues"]
    assert queue["name"] == "Tier 2"
    assert [h["session_id"] for h in queue["waiting"]] == [first, second]  # longest first
    assert [h["waiting_seconds"] for h in queue["waiting"]] == [15, 10]
    assert (await _json(await client.get("/api/v1/queues", headers=dave.auth), 200)) == {
        "queues": []}
    assert len((await _json(await client.get("/api/v1/queues", headers=admin.auth),
                            200))["queues"]) == 1
    # Dave is in no team of this queue: he may not read or pick it.
    assert (await client.get(f"/api/v1/sessions/{first}/events", headers=dave.auth)).status \
        == 403
    assert (await client.post(f"/api/v1/handoffs/{a['handoff_id']}/accept",
                              headers=dave.auth)).status == 403
    url = f"/api/v1/handoffs/{a['handoff_id']}/accept"
    bob_try, carol_try = await asyncio.gather(client.post(url, headers=bob.auth),
                                              client.post(url, headers=carol.auth))
    assert sorted([bob_try.status, carol_try.status]) == [200, 409]
    loser = bob_try if bob_try.status == 409 else carol_try
    assert (await loser.json())["error"] == "handoff_taken"
    queues = await _json(await client.get("/api/v1/queues", headers=bob.auth), 200)
    assert [h["session_id"] for h in queues["queues"][0]["waiting"]] == [second]


async def test_uninvolved_technicians_see_nothing(client: TestClient,
                                                  make_tech: MakeTech) -> None:
    alice, bob, eve = await make_tech("Alice"), await make_tech("Bob"), await make_tech("Eve")
    session_id, token = await _active(client, alice)
    await client.put(f"/api/v1/sessions/{session_id}/notes", headers=alice.auth,
                     json={"notes": "Customer is VIP; call back at 5."})
    offered = await _json(await _transfer(client, alice, session_id,
                                          to_technician_id=bob.technician.id), 201)
    for method, path in (("GET", f"/api/v1/sessions/{session_id}/events"),
                         ("GET", f"/api/v1/sessions/{session_id}/transcript"),
                         ("GET", f"/api/v1/sessions/{session_id}/notes"),
                         ("PUT", f"/api/v1/sessions/{session_id}/notes"),
                         ("GET", f"/api/v1/sessions/{session_id}/handoffs"),
                         ("POST", f"/api/v1/sessions/{session_id}/transfer"),
                         ("POST", f"/api/v1/sessions/{session_id}/collaborators"),
                         ("POST", f"/api/v1/handoffs/{offered['handoff_id']}/accept"),
                         ("POST", f"/api/v1/handoffs/{offered['handoff_id']}/decline"),
                         ("POST", f"/api/v1/handoffs/{offered['handoff_id']}/cancel")):
        response = await client.request(method, path, headers=eve.auth,
                                        json={"notes": "x", "technician_id": 1, "note": "x"})
        body = await response.text()
        assert response.status == 403, (method, path, body)
        assert "VIP" not in body and "Printer" not in body
    # The end user's credential reaches neither notes nor handoffs.
    participant = {"Authorization": f"Bearer {token}"}
    for path in (f"/api/v1/sessions/{session_id}/notes",
                 f"/api/v1/sessions/{session_id}/handoffs"):
        response = await client.get(path, headers=participant)
        assert response.status in (401, 403)
        assert "VIP" not in await response.text()
    # The candidate reads the notes before accepting.
    notes = await _json(await client.get(f"/api/v1/sessions/{session_id}/notes",
                                         headers=bob.auth), 200)
    assert notes["notes"].startswith("Customer is VIP")


async def test_collaborators_up_to_four(client: TestClient, make_tech: MakeTech) -> None:
    owner = await make_tech("Alice")
    others = [await make_tech(name) for name in ("Bob", "Carol", "Dave", "Erin")]
    session_id, token = await _active(client, owner)
    user = await open_socket(client, session_id, token)
    try:
        for guest in others[:3]:
            await _json(await client.post(f"/api/v1/sessions/{session_id}/collaborators",
                                          headers=owner.auth,
                                          json={"technician_id": guest.technician.id}), 200)
            assert (await user.next_event("technician_joined"))["name"] == \
                guest.technician.display_name
        full = await client.post(f"/api/v1/sessions/{session_id}/collaborators",
                                 headers=owner.auth,
                                 json={"technician_id": others[3].technician.id})
        assert (await _json(full, 409))["error"] == "session_full"
        said = await client.post(f"/api/v1/sessions/{session_id}/messages",
                                 headers=others[0].auth, json={"text": "Bob helping out"})
        assert said.status == 201
        mine = await _json(await client.get("/api/v1/sessions", headers=others[0].auth), 200)
        assert [s["session_id"] for s in mine["sessions"]] == [session_id]
        left = await client.delete(f"/api/v1/sessions/{session_id}/collaborators/me",
                                   headers=others[0].auth)
        assert left.status == 204
        assert (await user.next_event("technician_left"))["name"] == "Bob"
        assert (await client.get(f"/api/v1/sessions/{session_id}/events",
                                 headers=others[0].auth)).status == 403
    finally:
        await user.close()


async def test_transfer_needs_a_note_and_a_target(client: TestClient,
                                                  make_tech: MakeTech) -> None:
    alice, bob = await make_tech("Alice"), await make_tech("Bob")
    session_id, _ = await _active(client, alice)
    for body, code in (({"note": "  ", "to_technician_id": bob.technician.id}, "note_required"),
                       ({"note": "x"}, "invalid_target"),
                       ({"note": "x", "to_technician_id": bob.technician.id, "to_team_id": 1},
                        "invalid_target"),
                       ({"note": "x", "to_technician_id": alice.technician.id},
                        "invalid_target")):
        response = await client.post(f"/api/v1/sessions/{session_id}/transfer",
                                     headers=alice.auth, json=body)
        assert (await _json(response, 400))["error"] == code, body
    unknown = await _transfer(client, alice, session_id, to_technician_id=9999)
    assert unknown.status == 404


async def test_ending_cancels_a_pending_transfer(client: TestClient,
                                                 make_tech: MakeTech) -> None:
    alice, bob = await make_tech("Alice"), await make_tech("Bob")
    session_id, _ = await _active(client, alice)
    offered = await _json(await _transfer(client, alice, session_id,
                                          to_technician_id=bob.technician.id), 201)
    await client.post(f"/api/v1/sessions/{session_id}/end", headers=alice.auth)
    late = await client.post(f"/api/v1/handoffs/{offered['handoff_id']}/accept",
                             headers=bob.auth)
    assert late.status == 409


async def test_roster_shows_presence_and_teams(client: TestClient, make_tech: MakeTech) -> None:
    admin = await make_tech("Root", admin=True)
    alice, bob = await make_tech("Alice"), await make_tech("Bob")
    await _team(client, admin, "Tier 2", bob)
    await login(client, alice.technician.email)
    ws = await client.ws_connect("/api/v1/technician/ws")
    try:
        await ws.send_str("ping")  # the dashboard only listens; this waits for its loop
        async with asyncio.timeout(5):
            while not get_broker(client.app).presence.online(alice.technician.id):
                await asyncio.sleep(0.01)
        roster = await _json(await client.get("/api/v1/technicians", headers=admin.auth), 200)
        by_name = {t["name"]: t for t in roster["technicians"]}
        assert by_name["Alice"]["presence"] == "online"
        assert by_name["Bob"]["presence"] == "offline" and by_name["Bob"]["teams"] == ["Tier 2"]
        assert roster["technicians"][0]["name"] == "Alice"  # online first
    finally:
        await ws.close()
    async with asyncio.timeout(5):
        while get_broker(client.app).presence.online(alice.technician.id):
            await asyncio.sleep(0.01)
    roster = await _json(await client.get("/api/v1/technicians", headers=admin.auth), 200)
    assert {t["name"]: t["presence"] for t in roster["technicians"]}["Alice"] == "away"


async def test_former_owner_stops_receiving_at_once(client: TestClient,
                                                    make_tech: MakeTech) -> None:
    alice, bob = await make_tech("Alice"), await make_tech("Bob")
    session_id, _ = await _active(client, alice)
    watching = await open_socket(client, session_id, alice.token)
    try:
        offered = await _json(await _transfer(client, alice, session_id,
                                              to_technician_id=bob.technician.id), 201)
        await _json(await client.post(f"/api/v1/handoffs/{offered['handoff_id']}/accept",
                                      headers=bob.auth), 200)
        assert (await watching.next_event("handed_over"))["to"] == "Bob"
        assert await watching.close_code() == 4403
        again = await client.ws_connect(f"/api/v1/sessions/{session_id}/ws")
        try:
            await again.send_json({"type": "hello", "token": alice.token})
            assert (await again.receive_json(timeout=5))["code"] == "forbidden"
        finally:
            await again.close()
    finally:
        await watching.close()


async def test_admin_page_is_for_admins(client: TestClient, make_tech: MakeTech) -> None:
    admin = await make_tech("Root", admin=True)
    alice = await make_tech("Alice")
    assert (await client.get("/admin", allow_redirects=False)).headers["Location"] == "/login"
    await login(client, alice.technician.email)
    assert (await client.get("/admin")).status == 403
    client.session.cookie_jar.clear()
    await login(client, admin.technician.email)
    page = await client.get("/admin")
    assert page.status == 200 and "Team queues" in await page.text()
