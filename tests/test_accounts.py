"""Technician administration (add, rename, admins, disable, password reset) and the
one-time passwords that must be changed at the next login."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient

from broker.core import Broker
from broker.technicians import TECHNICIANS_TOPIC, Ending, TechnicianChanged

from .conftest import PASSWORD, Tech, csrf_from, login, start_session

MakeTech = Callable[..., Awaitable[Tech]]
NEW_PASSWORD = "a password of my own"


async def _json(response: Any, status: int) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def _form_login(client: TestClient, email: str, password: str) -> Any:
    page = await client.get("/login")
    return await client.post("/login", allow_redirects=False, data={
        "email": email, "password": password, "_csrf": csrf_from(await page.text())})


async def _change_password(client: TestClient, current: str, new: str,
                           repeat: str | None = None) -> Any:
    page = await client.get("/password")
    assert page.status == 200
    return await client.post("/password", allow_redirects=False, data={
        "current": current, "new": new, "repeat": new if repeat is None else repeat,
        "_csrf": csrf_from(await page.text())})


def _page_csrf(html: str) -> str:
    match = re.search(r'data-csrf="([^"]+)"', html)
    assert match
    return match.group(1)


async def test_an_added_technician_must_choose_a_password_first(
        client: TestClient, make_tech: MakeTech) -> None:
    admin = await make_tech("Root", admin=True)
    added = await _json(await client.post("/api/v1/technicians", headers=admin.auth, json={
        "email": "Maria@Example.com", "name": "Maria Weber"}), 201)
    assert added["email"] == "maria@example.com" and added["name"] == "Maria Weber"
    assert added["must_change_password"] and not added["is_admin"] and not added["disabled"]
    one_time = added["one_time_password"]
    assert len(one_time) >= 12

    response = await _form_login(client, "maria@example.com", one_time)
    assert response.status == 303 and response.headers["Location"] == "/password"
    # Until then the login reaches nothing else: not the pages, not the API.
    for page in ("/dashboard", "/admin", "/"):
        response = await client.get(page, allow_redirects=False)
        assert response.headers["Location"] == ("/dashboard" if page == "/" else "/password")
    response = await client.get("/api/v1/sessions")
    assert (await _json(response, 403))["error"] == "password_change_required"
    with pytest.raises(WSServerHandshakeError) as refused:
        await client.ws_connect("/api/v1/technician/ws")
    assert refused.value.status == 403

    response = await _change_password(client, one_time, NEW_PASSWORD)
    assert response.status == 303 and response.headers["Location"] == "/dashboard"
    assert (await client.get("/api/v1/sessions")).status == 200
    dashboard = await client.get("/dashboard")
    assert dashboard.status == 200
    # The one-time password is gone; the new one works and leads to the dashboard.
    await client.post("/logout", data={"_csrf": _page_csrf(await dashboard.text())})
    assert (await _form_login(client, "maria@example.com", one_time)).status == 401
    response = await _form_login(client, "maria@example.com", NEW_PASSWORD)
    assert response.headers["Location"] == "/dashboard"


async def test_the_first_admin_changes_the_printed_password(broker: Broker,
                                                           client: TestClient) -> None:
    created = await broker.ensure_admin()
    assert created is not None
    admin, password = created
    assert admin.must_change_password and admin.is_admin
    response = await _form_login(client, admin.email, password)
    assert response.headers["Location"] == "/password"
    page = await client.get("/password")
    assert "one-time password" in await page.text()
    assert (await _change_password(client, password, NEW_PASSWORD)).status == 303
    assert not (await broker.technicians.get(admin.id)).must_change_password


async def test_technicians_added_on_the_command_line_keep_their_password(
        broker: Broker, client: TestClient) -> None:
    # What `supportbroker technician add` calls: the operator chose this password.
    added = await broker.technicians.add("ops@example.com", "Ops", PASSWORD)
    assert not added.must_change_password
    await login(client, "ops@example.com")


async def test_changing_a_password_says_what_is_wrong(client: TestClient, tech: Tech) -> None:
    await login(client, tech.technician.email)
    cases = [(("wrong password", NEW_PASSWORD, None), "The current password is not right."),
             ((PASSWORD, NEW_PASSWORD, "something else"), "The new passwords differ."),
             ((PASSWORD, "short", None), "at least 8 characters"),
             ((PASSWORD, PASSWORD, None), "differs from the current one")]
    for (current, new, repeat), message in cases:
        response = await _change_password(client, current, new, repeat)
        assert response.status == 400 and message in await response.text()
    response = await _change_password(client, PASSWORD, NEW_PASSWORD)
    assert response.headers["Location"] == "/dashboard"


async def test_changing_the_password_ends_the_other_logins(
        aiohttp_client: Any, client: TestClient, tech: Tech) -> None:
    other = await aiohttp_client(client.server)  # a second browser
    await login(other, tech.technician.email)
    await login(client, tech.technician.email)
    await _change_password(client, PASSWORD, NEW_PASSWORD)
    assert (await client.get("/api/v1/sessions")).status == 200
    assert (await other.get("/api/v1/sessions")).status == 401
    assert (await client.get("/api/v1/sessions", headers=tech.auth)).status == 200


async def test_the_german_password_page(client: TestClient, tech: Tech) -> None:
    await login(client, tech.technician.email)
    page = await client.get("/password?lang=de")
    text = await page.text()
    assert "Passwort ändern" in text and "Neues Passwort" in text


async def test_only_admins_manage_technicians(client: TestClient, make_tech: MakeTech) -> None:
    admin, plain = await make_tech("Root", admin=True), await make_tech("Plain")
    target = plain.technician.id
    for method, path, body in [
            ("POST", "/api/v1/technicians", {"email": "x@example.com", "name": "X"}),
            ("PATCH", f"/api/v1/technicians/{target}", {"admin": True}),
            ("PATCH", f"/api/v1/technicians/{admin.technician.id}", {"disabled": True}),
            ("POST", f"/api/v1/technicians/{target}/password-reset", None)]:
        response = await client.request(method, path, headers=plain.auth, json=body)
        assert (await _json(response, 403))["error"] == "forbidden", path
    listing = await _json(await client.get("/api/v1/technicians", headers=admin.auth), 200)
    assert {t["id"]: t["is_admin"] for t in listing["technicians"]}[target] is False


async def test_adding_checks_its_input(client: TestClient, make_tech: MakeTech) -> None:
    admin = await make_tech("Root", admin=True)
    for body, status, code in [
            ({"email": "not an address", "name": "X"}, 400, "invalid_email"),
            ({"email": "x@example.com"}, 400, "invalid_input"),
            ({"email": "x@example.com", "name": " "}, 400, "invalid_input"),
            ({"email": "x@example.com", "name": "X", "admin": "yes"}, 400, "invalid_input"),
            ({"email": admin.technician.email, "name": "Twin"}, 409, "email_taken")]:
        response = await client.post("/api/v1/technicians", headers=admin.auth, json=body)
        assert (await _json(response, status))["error"] == code, body


async def test_the_roster_shows_admins_the_account_fields(client: TestClient,
                                                         make_tech: MakeTech) -> None:
    admin, plain, gone = (await make_tech("Root", admin=True), await make_tech("Plain"),
                          await make_tech("Gone"))
    team = await _json(await client.post("/api/v1/teams", headers=admin.auth,
                                          json={"name": "Tier 2"}), 201)
    await _json(await client.post(f"/api/v1/teams/{team['team_id']}/members",
                                  headers=admin.auth,
                                  json={"technician_id": plain.technician.id}), 200)
    await _json(await client.patch(f"/api/v1/technicians/{gone.technician.id}",
                                   headers=admin.auth, json={"disabled": True}), 200)
    seen = await _json(await client.get("/api/v1/technicians", headers=plain.auth), 200)
    # Everybody: the transfer picker's fields, and nobody who is disabled.
    assert {t["name"] for t in seen["technicians"]} == {"Root", "Plain"}
    for entry in seen["technicians"]:
        assert set(entry) == {"id", "name", "is_admin", "presence", "teams"}
    mine = next(t for t in seen["technicians"] if t["id"] == plain.technician.id)
    assert mine["teams"] == ["Tier 2"]
    full = await _json(await client.get("/api/v1/technicians", headers=admin.auth), 200)
    by_name = {t["name"]: t for t in full["technicians"]}
    assert set(by_name) == {"Root", "Plain", "Gone"}
    assert by_name["Plain"]["team_ids"] == [team["team_id"]]
    assert by_name["Plain"]["email"] == plain.technician.email
    assert by_name["Gone"]["disabled"] and by_name["Gone"]["disabled_at"]
    assert not by_name["Root"]["must_change_password"]


async def test_renaming_and_admin_rights(client: TestClient, make_tech: MakeTech) -> None:
    admin, plain = await make_tech("Root", admin=True), await make_tech("Plain")
    path = f"/api/v1/technicians/{plain.technician.id}"
    assert (await client.get("/api/v1/logins", headers=plain.auth)).status == 403
    changed = await _json(await client.patch(path, headers=admin.auth, json={
        "name": "  Paula   Plain ", "admin": True}), 200)
    assert changed["name"] == "Paula Plain" and changed["is_admin"]
    # The rights take effect at once, also for the API token used a moment ago (cached).
    assert (await client.get("/api/v1/logins", headers=plain.auth)).status == 200
    await _json(await client.patch(path, headers=admin.auth, json={"admin": False}), 200)
    assert (await client.get("/api/v1/logins", headers=plain.auth)).status == 403
    for body in ({"name": ""}, {"disabled": "true"}, {"name": 5}):
        assert (await client.patch(path, headers=admin.auth, json=body)).status == 400
    assert (await client.patch("/api/v1/technicians/9999", headers=admin.auth,
                               json={"name": "X"})).status == 404
    assert (await client.patch("/api/v1/technicians/99999999999999999999",
                               headers=admin.auth, json={"name": "X"})).status == 400


async def test_disabling_ends_logins_and_tokens_and_keeps_history(
        broker: Broker, client: TestClient, make_tech: MakeTech) -> None:
    admin, bob = await make_tech("Root", admin=True), await make_tech("Bob")
    started = await start_session(client, bob)
    changes: list[Any] = []
    broker.bus.subscribe(TECHNICIANS_TOPIC, changes.append)
    await login(client, bob.technician.email)
    assert (await client.get("/api/v1/sessions")).status == 200
    assert (await client.get("/api/v1/sessions", headers=bob.auth)).status == 200  # cached

    disabled = await _json(await client.patch(
        f"/api/v1/technicians/{bob.technician.id}", headers=admin.auth,
        json={"disabled": True}), 200)
    assert disabled["disabled"] and disabled["presence"] == "offline"
    assert changes == [TechnicianChanged(bob.technician.id, logins_ended=True,
                                         tokens_revoked=True,
                                         ending=Ending.TECHNICIAN_DISABLED)]
    assert (await client.get("/api/v1/sessions")).status == 401  # the cookie's login ended
    assert (await client.get("/api/v1/sessions", headers=bob.auth)).status == 401
    response = await _form_login(client, bob.technician.email, PASSWORD)
    assert response.status == 403
    assert "This account is disabled" in await response.text()
    # A wrong password still says only that.
    response = await _form_login(client, bob.technician.email, "wrong password")
    assert response.status == 401 and "disabled" not in await response.text()
    # Nobody can hand a session to them; what they did stays.
    mine = await start_session(client, admin)
    response = await client.post(f"/api/v1/sessions/{mine['session_id']}/transfer",
                                 headers=admin.auth,
                                 json={"to_technician_id": bob.technician.id, "note": "?"})
    assert (await _json(response, 400))["error"] == "invalid_target"
    response = await client.post(f"/api/v1/sessions/{mine['session_id']}/collaborators",
                                 headers=admin.auth, json={"technician_id": bob.technician.id})
    assert (await _json(response, 400))["error"] == "invalid_target"
    history = await _json(await client.get(
        f"/api/v1/sessions?technician_id={bob.technician.id}", headers=admin.auth), 200)
    assert [s["session_id"] for s in history["sessions"]] == [started["session_id"]]

    # Enabled again: the password works, the revoked token does not come back.
    await _json(await client.patch(f"/api/v1/technicians/{bob.technician.id}",
                                   headers=admin.auth, json={"disabled": False}), 200)
    assert (await client.get("/api/v1/sessions", headers=bob.auth)).status == 401
    await login(client, bob.technician.email)
    fresh = await broker.technicians.create_token(bob.technician.id)
    assert (await client.get("/api/v1/sessions",
                             headers={"Authorization": f"Bearer {fresh}"})).status == 200


async def test_there_is_always_an_active_admin(client: TestClient, make_tech: MakeTech) -> None:
    first = await make_tech("First", admin=True)
    own = f"/api/v1/technicians/{first.technician.id}"
    for body in ({"admin": False}, {"disabled": True}, {"admin": False, "disabled": True}):
        response = await client.patch(own, headers=first.auth, json=body)
        assert (await _json(response, 409))["error"] == "last_admin"
    second = await make_tech("Second", admin=True)
    await _json(await client.patch(own, headers=first.auth, json={"admin": False}), 200)
    response = await client.patch(f"/api/v1/technicians/{second.technician.id}",
                                  headers=second.auth, json={"disabled": True})
    assert (await _json(response, 409))["error"] == "last_admin"


async def test_two_admins_demoting_each_other_at_once_leave_one(
        client: TestClient, make_tech: MakeTech) -> None:
    one, two = await make_tech("One", admin=True), await make_tech("Two", admin=True)
    answers = await asyncio.gather(*(
        client.patch(f"/api/v1/technicians/{target.technician.id}", headers=by.auth,
                     json={"admin": False}) for by, target in ((one, two), (two, one))))
    # The second is refused: as the last admin (409), or, when the first had already
    # finished, as no admin any more (403). Never both granted.
    assert sorted(answer.status for answer in answers) in ([200, 403], [200, 409])
    listing = await _json(await client.get("/api/v1/technicians",
                                           headers=(one if answers[0].status == 200
                                                    else two).auth), 200)
    assert sum(t["is_admin"] for t in listing["technicians"]) == 1


async def test_a_password_reset_gives_a_one_time_password(
        client: TestClient, make_tech: MakeTech) -> None:
    admin, bob = await make_tech("Root", admin=True), await make_tech("Bob")
    await login(client, bob.technician.email)
    reset = await _json(await client.post(
        f"/api/v1/technicians/{bob.technician.id}/password-reset", headers=admin.auth), 200)
    assert reset["must_change_password"] and reset["id"] == bob.technician.id
    assert (await client.get("/api/v1/sessions")).status == 401  # logged out
    # API tokens are no passwords: integrations keep working.
    assert (await client.get("/api/v1/sessions", headers=bob.auth)).status == 200
    assert (await _form_login(client, bob.technician.email, PASSWORD)).status == 401
    response = await _form_login(client, bob.technician.email, reset["one_time_password"])
    assert response.headers["Location"] == "/password"
    assert (await client.get("/api/v1/sessions")).status == 403
    await _change_password(client, reset["one_time_password"], NEW_PASSWORD)
    assert (await client.get("/api/v1/sessions")).status == 200
    assert (await client.post(f"/api/v1/technicians/{bob.technician.id}/password-reset",
                              headers=bob.auth)).status == 403
