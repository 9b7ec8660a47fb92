"""Session history: GET /api/v1/sessions with search, filters, cursor paging and who may
read whose, on SQLite and PostgreSQL; and the migration that fills it in."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from alembic import command

from broker.clock import FakeClock
from broker.core import Broker
from broker.db import _alembic_config, create_engine, migrate
from broker.sessions.history import History, HistoryQuery
from broker.sessions.search import terms
from broker.settings import Settings
from broker.technicians import Technician

from .conftest import Tech, join, login, start_session

MakeTech = Callable[..., Awaitable[Tech]]
DAY = 86400.0


async def _json(response: Any, status: int) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def _ids(client: TestClient, who: Tech, query: str = "") -> list[str]:
    body = await _json(await client.get(f"/api/v1/sessions?{query}", headers=who.auth), 200)
    return [session["session_id"] for session in body["sessions"]]


async def _session(client: TestClient, owner: Tech, *lines: str,
                   name: str | None = None) -> str:
    """An active session whose end user (called `name`) and technician say `lines`."""
    started = await start_session(client, owner)
    joined = await client.post("/api/v1/join", json={"key": started["key"], "name": name})
    token = (await _json(joined, 200))["participant_token"]
    for number, line in enumerate(lines):
        auth = owner.auth if number % 2 else {"Authorization": f"Bearer {token}"}
        await _json(await client.post(f"/api/v1/sessions/{started['session_id']}/messages",
                                      headers=auth, json={"text": line}), 201)
    return str(started["session_id"])


async def test_search_finds_names_chat_lines_and_notes(client: TestClient, tech: Tech,
                                                       make_tech: MakeTech, clock: FakeClock,
                                                       broker: Broker) -> None:
    printer = await _session(client, tech, "My printer jams on every page.",
                             "Send a photo to bob@example.com please.", name="Jürgen Müller")
    clock.advance(1)
    vpn = await _session(client, tech, "The VPN drops at noon.", name="Ana")
    await _json(await client.put(f"/api/v1/sessions/{vpn}/notes", headers=tech.auth,
                                 json={"notes": "Token-Generator replaced; call back Friday"}),
                200)
    bob = await make_tech("Bob")
    await _json(await client.post(f"/api/v1/sessions/{printer}/transfer", headers=tech.auth,
                                  json={"to_technician_id": bob.technician.id,
                                        "note": "Escalating: firmware 4.2 suspected"}), 201)
    cases = {
        "printer": [printer], "PRINTER": [printer], "print": [printer], "jam": [printer],
        "müller": [printer], "MÜLLER jürgen": [printer], "example": [printer],
        "bob@example.com": [printer], "generator": [vpn], "friday call": [vpn],
        "firmware 4.2": [printer], "vpn": [vpn], "noon printer": [], "fax": [],
        "pr": [],  # two letters match whole words only
        "on": [printer],  # ... such as this one
    }
    # SQLite looks rare words up first and checks frequent ones session by session:
    # both ways find the same (with PostgreSQL its planner chooses).
    checking = broker.history.collecting_at_most(0)
    for q, expected in cases.items():
        assert await _ids(client, tech, f"q={q}") == expected, q
        page = await checking.page(tech.technician, HistoryQuery(terms=terms(q)))
        assert [s.id for s in page.sessions] == expected, q
    # New notes replace the old ones in the index.
    await _json(await client.put(f"/api/v1/sessions/{vpn}/notes", headers=tech.auth,
                                 json={"notes": "Solved by a new router."}), 200)
    assert await _ids(client, tech, "q=generator") == []
    assert await _ids(client, tech, "q=router") == [vpn]


async def test_history_keeps_sessions_handed_over_or_left(
        client: TestClient, make_tech: MakeTech, clock: FakeClock) -> None:
    alice, bob, carol, dave = (await make_tech("Alice"), await make_tech("Bob"),
                               await make_tech("Carol"), await make_tech("Dave"))
    handed = await _session(client, alice, "hello")
    offered = await _json(await client.post(
        f"/api/v1/sessions/{handed}/transfer", headers=alice.auth,
        json={"to_technician_id": bob.technician.id, "note": "yours"}), 201)
    await _json(await client.post(f"/api/v1/handoffs/{offered['handoff_id']}/accept",
                                  headers=bob.auth), 200)
    clock.advance(1)
    helped = await _session(client, alice, "hi")
    await _json(await client.post(f"/api/v1/sessions/{helped}/collaborators",
                                  headers=alice.auth,
                                  json={"technician_id": carol.technician.id}), 200)
    left = await client.delete(f"/api/v1/sessions/{helped}/collaborators/me",
                               headers=carol.auth)
    assert left.status == 204
    clock.advance(1)
    declined = await _session(client, alice, "hey")
    offer = await _json(await client.post(
        f"/api/v1/sessions/{declined}/transfer", headers=alice.auth,
        json={"to_technician_id": dave.technician.id, "note": "yours?"}), 201)
    await _json(await client.post(f"/api/v1/handoffs/{offer['handoff_id']}/decline",
                                  headers=dave.auth, json={"reason": "busy"}), 200)
    assert await _ids(client, alice) == [declined, helped, handed]
    assert await _ids(client, bob) == [handed]
    assert await _ids(client, carol) == [helped]
    assert await _ids(client, dave) == []  # offered only


async def test_who_took_part_reads_the_transcript_but_not_the_live_session(
        client: TestClient, make_tech: MakeTech) -> None:
    alice, bob, carol, dave = (await make_tech("Alice"), await make_tech("Bob"),
                               await make_tech("Carol"), await make_tech("Dave"))
    session_id = await _session(client, alice, "The printer prints blank pages.", "On it.")
    await _json(await client.post(f"/api/v1/sessions/{session_id}/collaborators",
                                  headers=alice.auth,
                                  json={"technician_id": carol.technician.id}), 200)
    assert (await client.delete(f"/api/v1/sessions/{session_id}/collaborators/me",
                                headers=carol.auth)).status == 204
    declined = await _json(await client.post(
        f"/api/v1/sessions/{session_id}/transfer", headers=alice.auth,
        json={"to_technician_id": dave.technician.id, "note": "yours?"}), 201)
    await _json(await client.post(f"/api/v1/handoffs/{declined['handoff_id']}/decline",
                                  headers=dave.auth, json={"reason": "busy"}), 200)
    handed = await _json(await client.post(
        f"/api/v1/sessions/{session_id}/transfer", headers=alice.auth,
        json={"to_technician_id": bob.technician.id, "note": "yours"}), 201)
    await _json(await client.post(f"/api/v1/handoffs/{handed['handoff_id']}/accept",
                                  headers=bob.auth), 200)
    base = f"/api/v1/sessions/{session_id}"
    for state in ("live", "ended"):
        for former in (alice, carol):  # handed it over; left it
            for format in ("text", "html"):
                export = await client.get(f"{base}/transcript?format={format}",
                                          headers=former.auth)
                assert export.status == 200, (state, former.technician.display_name)
                assert "The printer prints blank pages." in await export.text()
            # Reading or steering the session itself stays the present technicians'.
            assert (await client.get(f"{base}/events", headers=former.auth)).status == 403
            assert (await client.post(f"{base}/messages", headers=former.auth,
                                      json={"text": "still here?"})).status == 403
        # Offered it, never in it: no transcript.
        refused = await client.get(f"{base}/transcript", headers=dave.auth)
        assert refused.status == 403
        assert "blank pages" not in await refused.text()
        if state == "live":
            await _json(await client.post(f"{base}/end", headers=bob.auth), 200)
    # The page, as a browser with Alice's login asks for it.
    await login(client, alice.technician.email)
    page = await client.get(f"/sessions/{session_id}/transcript")
    assert page.status == 200 and "The printer prints blank pages." in await page.text()
    await login(client, dave.technician.email)
    assert (await client.get(f"/sessions/{session_id}/transcript")).status == 403


async def test_filters_by_state_and_time(client: TestClient, tech: Tech,
                                         clock: FakeClock) -> None:
    clock.advance(DAY - clock.now() % DAY)  # midnight UTC
    first = await _session(client, tech, "one")
    await _json(await client.post(f"/api/v1/sessions/{first}/end", headers=tech.auth), 200)
    clock.advance(DAY + 3600)  # the next day, 01:00
    second = await _session(client, tech, "two")
    clock.advance(DAY)
    waiting = (await start_session(client, tech))["session_id"]
    day1, day2 = (_date(clock.now() - 2 * DAY - 3600), _date(clock.now() - DAY))
    assert await _ids(client, tech, "state=ended") == [first]
    assert await _ids(client, tech, "state=active,waiting") == [waiting, second]
    assert await _ids(client, tech, f"to={day1}") == [first]
    assert await _ids(client, tech, f"from={day2}&to={day2}") == [second]
    assert await _ids(client, tech, f"from={day2}") == [waiting, second]
    assert await _ids(client, tech, f"from={day2}T00:30:00Z&to={day2}T01:00:00Z") == []
    assert await _ids(client, tech, f"from={day2}T00:30:00Z&to={day2}T01:00:01Z") == [second]
    assert await _ids(client, tech, f"from={day2}T02:30:00%2B02:00&to={day2}T03:00:01+02:00") \
        == [second]
    assert await _ids(client, tech, "q=two&state=ended") == []


def _date(timestamp: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).date().isoformat()


async def test_pages_neither_repeat_nor_skip(client: TestClient, tech: Tech,
                                             clock: FakeClock) -> None:
    made = []
    for number in range(23):
        made.append((await start_session(client, tech))["session_id"])
        if number % 3 == 0:
            clock.advance(1)  # and in between, several started in the same second
    listed = (await _json(await client.get("/api/v1/sessions?limit=200", headers=tech.auth),
                          200))["sessions"]
    # Newest first; several started in the same second by id, descending.
    order = [(s["created_at"], s["session_id"]) for s in listed]
    assert order == sorted(order, reverse=True) and len(set(s for _, s in order)) == 23
    expected = [sid for _, sid in order]
    assert sorted(expected) == sorted(made)
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        body = await _json(await client.get(f"/api/v1/sessions?limit=5{cursor}",
                                            headers=tech.auth), 200)
        seen += [s["session_id"] for s in body["sessions"]]
        if len(seen) == 5:
            # Sessions started meanwhile come before the first page, not into the next.
            await start_session(client, tech)
        if body["next_cursor"] is None:
            break
        cursor = f"&cursor={body['next_cursor']}"
    assert seen == expected


async def test_who_reads_whose_history(client: TestClient, make_tech: MakeTech,
                                       clock: FakeClock) -> None:
    admin, alice, bob = (await make_tech("Root", admin=True), await make_tech("Alice"),
                         await make_tech("Bob"))
    mine = await _session(client, alice, "a")
    clock.advance(1)
    theirs = await _session(client, bob, "b")
    assert await _ids(client, alice) == [mine]
    assert await _ids(client, alice, f"technician_id={alice.technician.id}") == [mine]
    response = await client.get(f"/api/v1/sessions?technician_id={bob.technician.id}",
                                headers=alice.auth)
    assert (await _json(response, 403))["error"] == "forbidden"
    assert await _ids(client, admin) == [theirs, mine]
    assert await _ids(client, admin, f"technician_id={bob.technician.id}") == [theirs]
    assert await _ids(client, admin, "q=b") == [theirs]
    participant = (await join(client, (await start_session(client, alice))["key"]))
    response = await client.get("/api/v1/sessions", headers={
        "Authorization": f"Bearer {participant['participant_token']}"})
    assert response.status == 403


@pytest.mark.parametrize("query, code", [
    ("cursor=bm90IGEgY3Vyc29y", "bad_cursor"), ("cursor=%%%", "bad_cursor"),
    ("state=bogus", "invalid_input"), ("from=yesterday", "invalid_time"),
    ("to=2026-13-01", "invalid_time"), ("limit=0", "invalid_input"),
    ("limit=201", "invalid_input"), ("limit=ten", "invalid_input"),
    ("technician_id=-1", "invalid_input"), ("q=!!!", "invalid_query"),
])
async def test_bad_queries_are_400(client: TestClient, tech: Tech, query: str,
                                   code: str) -> None:
    response = await client.get(f"/api/v1/sessions?{query}", headers=tech.auth)
    assert (await _json(response, 400))["error"] == code


async def test_the_migration_fills_in_stored_sessions(tmp_path: Path, database_url: str) -> None:
    """A database from before history (0012) gets its members and words on upgrade."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    settings.data_dir.mkdir(parents=True)
    engine = create_engine(settings.sqlalchemy_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "0012"))
            for statement, values in [
                ("INSERT INTO technicians (id, email, display_name, password_hash, is_admin, "
                 "created_at) VALUES (:id, :email, :name, 'x', false, 0)",
                 [{"id": n, "email": f"t{n}@example.com", "name": f"T{n}"} for n in (1, 2, 3)]),
                ("INSERT INTO sessions (id, technician_id, state, created_at, end_user_name, "
                 "notes) VALUES (:id, :owner, 'ended', :at, :name, :notes)",
                 [{"id": "s1", "owner": 2, "at": 1.0, "name": "Jürgen", "notes": "Fixed DNS"},
                  {"id": "s2", "owner": 3, "at": 2.0, "name": None, "notes": None}]),
                ("INSERT INTO handoffs (id, session_id, from_technician_id, to_technician_id, "
                 "note, keep_sender, state, created_at, decided_by) VALUES ('h1', 's1', 1, 2, "
                 "'over to you', false, 'accepted', 1.5, 2)", [{}]),
                ("INSERT INTO session_technicians (session_id, technician_id, joined_at) "
                 "VALUES ('s2', 1, 2.5)", [{}]),
                ("INSERT INTO events (session_id, seq, type, sender, body, created_at) "
                 "VALUES (:sid, :seq, 'message', 'p1', :body, 3.0)",
                 [{"sid": "s2", "seq": seq, "body": json.dumps(
                     {"author": None, "data": {"text": f"printer line {seq}"}})}
                  for seq in range(1, 4)])]:
                await conn.execute(sa.text(statement), values if values != [{}] else None)
        await migrate(engine)
        history = History(engine)
        admin = Technician(9, "a@example.com", "A", True)
        for technician_id, expected in ((1, ["s2", "s1"]), (2, ["s1"]), (3, ["s2"])):
            page = await history.page(admin, HistoryQuery(technician_id=technician_id))
            assert [s.id for s in page.sessions] == expected
        for q, expected in (("jürgen", ["s1"]), ("dns", ["s1"]), ("over", ["s1"]),
                            ("printer 3", ["s2"]), ("printer 4", [])):
            page = await history.page(admin, HistoryQuery(terms=terms(q)))
            assert [s.id for s in page.sessions] == expected, q
    finally:
        await engine.dispose()
