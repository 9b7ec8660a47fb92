"""Handoff when an owner is gone: orphaned sessions go to the longest collaborator, back
to their queue or to the owner's team, else end; logouts stick and seats limit logins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.settings import Settings
from web import create_app
from web.state import get_broker

from .conftest import PASSWORD, Tech, csrf_from, login
from .handoff_support import MakeTech, _active, _json, _team, _transfer

# -- owners who are gone -------------------------------------------------------------------

async def _browser_login(client: TestClient, tech: Tech) -> str:
    return await login(client, tech.technician.email)


async def test_orphan_goes_to_the_longest_collaborator(client: TestClient,
                                                       make_tech: MakeTech,
                                                       clock: FakeClock) -> None:
    alice, bob, carol = await make_tech("Alice"), await make_tech("Bob"), await make_tech("Carol")
    session_id, token = await _active(client, alice)
    for guest in (bob, carol):
        await client.post(f"/api/v1/sessions/{session_id}/collaborators", headers=alice.auth,
                          json={"technician_id": guest.technician.id})
        clock.advance(1)
    csrf = await _browser_login(client, alice)
    handoffs = get_broker(client.app).handoffs
    assert await handoffs.orphans.rehome() == 0  # logged in, seen just now
    await client.post("/logout", data={"_csrf": csrf})
    assert await handoffs.orphans.rehome() == 1
    session = await _json(await client.get(f"/api/v1/sessions/{session_id}",
                                           headers=bob.auth), 200)
    assert session["technician"]["name"] == "Bob"


async def test_orphan_goes_back_to_its_last_queue(client: TestClient, make_tech: MakeTech,
                                                  clock: FakeClock) -> None:
    admin = await make_tech("Root", admin=True)
    alice, bob, carol = await make_tech("Alice"), await make_tech("Bob"), await make_tech("Carol")
    tier1 = await _team(client, admin, "Tier 1", alice)
    tier2 = await _team(client, admin, "Tier 2", bob)
    session_id, _ = await _active(client, carol)
    offered = await _json(await _transfer(client, carol, session_id, to_team_id=tier2), 201)
    accepted = await client.post(f"/api/v1/handoffs/{offered['handoff_id']}/accept",
                                 headers=bob.auth)
    assert accepted.status == 200
    await _browser_login(client, bob)
    clock.advance(601)  # Bob's dashboard has been closed longer than the window
    assert await get_broker(client.app).handoffs.orphans.rehome() == 1
    queues = await _json(await client.get("/api/v1/queues", headers=bob.auth), 200)
    waiting = queues["queues"][0]["waiting"]
    assert [h["session_id"] for h in waiting] == [session_id]
    assert "no longer connected" in waiting[0]["note"]
    assert tier1 != tier2


async def test_orphan_goes_to_the_owners_team_else_ends(client: TestClient,
                                                        make_tech: MakeTech,
                                                        clock: FakeClock) -> None:
    admin = await make_tech("Root", admin=True)
    alice, bob = await make_tech("Alice"), await make_tech("Bob")
    await _team(client, admin, "Tier 1", alice)
    teamed, _ = await _active(client, alice)
    lonely, token = await _active(client, bob)
    api_only, _ = await _active(client, admin)  # never logged in by browser: never orphaned
    csrf = await _browser_login(client, alice)
    await client.post("/logout", data={"_csrf": csrf})
    csrf = await _browser_login(client, bob)
    await client.post("/logout", data={"_csrf": csrf})
    assert await get_broker(client.app).handoffs.orphans.rehome() == 2
    queues = await _json(await client.get("/api/v1/queues", headers=alice.auth), 200)
    assert [h["session_id"] for h in queues["queues"][0]["waiting"]] == [teamed]
    ended = await _json(await client.get(f"/api/v1/sessions/{lonely}", headers=bob.auth), 200)
    assert ended["state"] == "ended" and ended["end_reason"] == "owner_gone"
    still = await _json(await client.get(f"/api/v1/sessions/{api_only}",
                                         headers=admin.auth), 200)
    assert still["state"] == "active"


# -- seats and logins ----------------------------------------------------------------------

async def test_logout_sticks_for_copied_cookies(client: TestClient, tech: Tech) -> None:
    csrf = await login(client, tech.technician.email)
    stolen = {c.key: c.value for c in client.session.cookie_jar}
    await client.post("/logout", data={"_csrf": csrf})
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies(stolen)
    assert (await client.get("/api/v1/sessions")).status == 401


@pytest.fixture
async def one_seat(aiohttp_client: Any, tmp_path: Path, clock: FakeClock,
                   database_url: str) -> TestClient:
    return await aiohttp_client(create_app(Settings(data_dir=tmp_path / "seats", seats=1,
                                                    database_url=database_url), clock=clock))


async def _try_login(client: TestClient, email: str) -> Any:
    page = await client.get("/login")
    return await client.post("/login", data={"email": email, "password": PASSWORD,
                                             "_csrf": csrf_from(await page.text())},
                             allow_redirects=False)


async def test_seats_limit_logins(one_seat: TestClient, aiohttp_client: Any) -> None:
    broker = get_broker(one_seat.app)
    await broker.technicians.add("ann@example.com", "Ann", PASSWORD)
    await broker.technicians.add("ben@example.com", "Ben", PASSWORD)
    await broker.technicians.add("root@example.com", "Root", PASSWORD, is_admin=True)
    assert (await _try_login(one_seat, "ann@example.com")).status == 303
    ann_cookies = {c.key: c.value for c in one_seat.session.cookie_jar}

    one_seat.session.cookie_jar.clear()
    full = await _try_login(one_seat, "ben@example.com")
    page = await full.text()
    assert full.status == 409 and "All seats are taken" in page and "Ann" in page
    assert "End this login" not in page  # not an admin: Ben waits
    again = await one_seat.post("/login/seat", data={"_csrf": csrf_from(page)},
                                allow_redirects=False)
    assert again.status == 409

    one_seat.session.cookie_jar.clear()
    full = await _try_login(one_seat, "root@example.com")
    page = await full.text()
    assert "End this login" in page
    (ann_login,) = await broker.logins.active()
    taken = await one_seat.post("/login/seat", data={"_csrf": csrf_from(page),
                                                     "end": ann_login.id},
                                allow_redirects=False)
    assert taken.status == 303 and taken.headers["Location"] == "/dashboard"
    one_seat.session.cookie_jar.clear()
    one_seat.session.cookie_jar.update_cookies(ann_cookies)
    assert (await one_seat.get("/api/v1/sessions")).status == 401  # Ann was logged out

