"""Canned responses through the API: who sees, uses and manages which, and what is valid."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broker.canned.model import MAX_PER_SHELF
from broker.core import Broker
from broker.schema import canned_responses

from .conftest import Tech, join, login, start_session

MakeTech = Callable[..., Awaitable[Tech]]
URL = "/api/v1/canned-responses"


async def _json(response: Any, status: int) -> Any:
    assert response.status == status, await response.text()
    return await response.json() if status != 204 else None


async def _add(client: TestClient, who: Tech, status: int = 201, **fields: Any) -> Any:
    fields.setdefault("title", "Greeting")
    fields.setdefault("text", "Hello {customer}, this is {technician}.")
    return await _json(await client.post(URL, headers=who.auth, json=fields), status)


async def _listed(client: TestClient, who: Tech, **query: str) -> list[str]:
    """The titles `who` gets from the list."""
    body = await _json(await client.get(URL, headers=who.auth, params=query), 200)
    return [item["title"] for item in body["canned_responses"]]


async def _put(client: TestClient, who: Tech, item: dict[str, Any], status: int,
               **changes: Any) -> Any:
    fields = {name: item[name] for name in ("scope", "team_id", "title", "text", "shortcut")}
    return await _json(await client.put(f"{URL}/{item['id']}", headers=who.auth,
                                        json={**fields, **changes}), status)


async def _delete(client: TestClient, who: Tech, item: dict[str, Any], status: int) -> Any:
    return await _json(await client.delete(f"{URL}/{item['id']}", headers=who.auth), status)


@pytest.fixture
async def people(broker: Broker, make_tech: MakeTech) -> dict[str, Any]:
    """An admin, Alice and Carol in team Tier 2, Bob in no team."""
    admin = await make_tech("Admin", admin=True)
    alice, bob, carol = await make_tech("Alice"), await make_tech("Bob"), await make_tech("Carol")
    team = await broker.teams.create("Tier 2")
    for member in (alice, carol):
        await broker.teams.add_member(team.id, member.technician.id)
    return {"admin": admin, "alice": alice, "bob": bob, "carol": carol, "team": team.id}


async def test_company_responses_everyone_uses_only_admins_manage(
        client: TestClient, people: dict[str, Any]) -> None:
    admin, alice, bob = people["admin"], people["alice"], people["bob"]
    item = await _add(client, admin, scope="company", title="Reboot", shortcut="reboot")
    assert (item["scope"], item["team_id"], item["editable"]) == ("company", None, True)
    for someone in (alice, bob, admin):
        assert await _listed(client, someone) == ["Reboot"]
    body = await _json(await client.get(URL, headers=bob.auth), 200)
    assert body["canned_responses"][0]["editable"] is False
    refused = await _add(client, alice, 403, scope="company")
    assert refused["error"] == "forbidden"
    await _put(client, alice, item, 403, title="Mine now")
    await _delete(client, bob, item, 403)
    changed = await _put(client, admin, item, 200, title="Restart", text="Please restart.")
    assert (changed["title"], changed["text"], changed["shortcut"]) == (
        "Restart", "Please restart.", "reboot")
    assert await _listed(client, alice) == ["Restart"]
    await _delete(client, admin, item, 204)
    assert await _listed(client, alice) == []
    await _delete(client, admin, item, 404)


async def test_team_responses_members_use_admins_manage(
        client: TestClient, broker: Broker, people: dict[str, Any]) -> None:
    admin, alice, bob, carol = people["admin"], people["alice"], people["bob"], people["carol"]
    team = people["team"]
    item = await _add(client, admin, scope="team", team_id=team, title="Escalation")
    assert (item["team_id"], item["team_name"]) == (team, "Tier 2")
    for member in (alice, carol):
        assert await _listed(client, member) == ["Escalation"]
        assert await _listed(client, member, team_id=str(team)) == ["Escalation"]
    # Bob is in no team: he neither sees nor reaches it.
    assert await _listed(client, bob) == []
    refused = await _json(await client.get(URL, headers=bob.auth,
                                           params={"team_id": str(team)}), 403)
    assert refused["error"] == "forbidden"
    await _put(client, bob, item, 404, title="Bob's")
    await _delete(client, bob, item, 404)
    # Members use it, but do not manage it.
    await _add(client, alice, 403, scope="team", team_id=team)
    await _put(client, alice, item, 403, title="Alice's")
    await _delete(client, carol, item, 403)
    # The admin is no member: the team's responses are not in their list to use, but
    # they manage them by naming the team.
    assert await _listed(client, admin) == []
    assert await _listed(client, admin, team_id=str(team)) == ["Escalation"]
    await _put(client, admin, item, 200, title="Escalate to Tier 3")
    assert await _listed(client, alice) == ["Escalate to Tier 3"]
    # Out of the team, out of its responses.
    await broker.teams.remove_member(team, alice.technician.id)
    assert await _listed(client, alice) == []
    await _delete(client, alice, item, 404)
    await _delete(client, admin, item, 204)
    assert await _listed(client, carol) == []


async def test_personal_responses_are_their_owners_alone(
        client: TestClient, people: dict[str, Any]) -> None:
    admin, alice, bob = people["admin"], people["alice"], people["bob"]
    item = await _add(client, alice, scope="personal", title="My sign-off", shortcut="bye")
    assert (item["scope"], item["editable"]) == ("personal", True)
    assert await _listed(client, alice) == ["My sign-off"]
    for other in (bob, admin):  # admins included
        assert await _listed(client, other) == []
        assert await _listed(client, other, scope="personal") == []
        for verb in ("put", "delete"):
            answer = (await _put(client, other, item, 404, title="Taken") if verb == "put"
                      else await _delete(client, other, item, 404))
            assert answer["error"] == "not_found"
    # Everyone has a shelf of their own: the same shortcut is free on Bob's.
    await _add(client, bob, scope="personal", title="Bob's sign-off", shortcut="bye")
    changed = await _put(client, alice, item, 200, text="Bye, {customer}!")
    assert changed["text"] == "Bye, {customer}!"
    await _delete(client, alice, item, 204)
    assert await _listed(client, alice) == []
    assert await _listed(client, bob) == ["Bob's sign-off"]


async def test_the_list_is_what_the_caller_may_use(
        client: TestClient, people: dict[str, Any]) -> None:
    admin, alice, bob = people["admin"], people["alice"], people["bob"]
    await _add(client, admin, scope="company", title="Company hello", text="Welcome!")
    await _add(client, admin, scope="team", team_id=people["team"], title="Tier 2 hello",
               text="Tier 2 here, {customer}.", shortcut="t2")
    await _add(client, alice, scope="personal", title="alice hello", text="Hi from me")
    await _add(client, bob, scope="personal", title="Bob hello", text="Hi from Bob")
    body = await _json(await client.get(URL, headers=alice.auth), 200)
    assert [(item["scope"], item["title"]) for item in body["canned_responses"]] == [
        ("personal", "alice hello"), ("company", "Company hello"), ("team", "Tier 2 hello")]
    assert [entry["placeholder"] for entry in body["placeholders"]] == [
        "{customer}", "{technician}"]
    # q looks in the title, the text and the shortcut, in any case.
    assert await _listed(client, alice, q="HELLO") == [
        "alice hello", "Company hello", "Tier 2 hello"]
    assert await _listed(client, alice, q="welcome") == ["Company hello"]
    assert await _listed(client, alice, q="T2") == ["Tier 2 hello"]
    assert await _listed(client, alice, q="Bob") == []
    assert await _listed(client, alice, scope="team") == ["Tier 2 hello"]
    assert await _listed(client, alice, scope="company", q="hi") == []
    refused = await _json(await client.get(URL, headers=alice.auth, params={"scope": "all"}),
                          400)
    assert refused["error"] == "bad_scope"
    await _json(await client.get(URL, headers=alice.auth, params={"team_id": "x"}), 400)
    await _json(await client.get(URL, headers=alice.auth, params={"team_id": "999"}), 404)
    await _json(await client.get(URL, headers=alice.auth, params={"q": "x" * 201}), 400)


async def test_moving_a_response_needs_both_shelves(
        client: TestClient, people: dict[str, Any]) -> None:
    admin, alice = people["admin"], people["alice"]
    mine = await _add(client, alice, scope="personal", title="Useful")
    await _put(client, alice, mine, 403, scope="company")
    await _put(client, alice, mine, 403, scope="team", team_id=people["team"])
    company = await _add(client, admin, scope="company", title="Shared")
    moved = await _put(client, admin, company, 200, scope="team", team_id=people["team"])
    assert (moved["id"], moved["scope"], moved["team_name"]) == (
        company["id"], "team", "Tier 2")
    assert await _listed(client, alice, scope="team") == ["Shared"]
    back = await _put(client, admin, moved, 200, scope="company", team_id=None)
    assert back["scope"] == "company"
    await _put(client, admin, back, 400, scope="company", team_id=people["team"])
    # An admin may keep a company response for themselves: then it is theirs alone.
    kept = await _put(client, admin, back, 200, scope="personal", team_id=None)
    assert kept["scope"] == "personal"
    assert await _listed(client, alice) == ["Useful"]


@pytest.mark.parametrize(("fields", "code"), [
    ({"title": "  "}, "bad_title"),
    ({"title": "x" * 101}, "bad_title"),
    ({"title": "Tab\u0007bell"}, "bad_title"),
    ({"text": " \n "}, "bad_canned_text"),
    ({"text": "ü" * 2049}, "bad_canned_text"),  # 4098 bytes: over a chat line's 4096
    ({"shortcut": "two words"}, "bad_shortcut"),
    ({"shortcut": "-dash"}, "bad_shortcut"),
    ({"shortcut": "x" * 33}, "bad_shortcut"),
    ({"scope": "everyone"}, "bad_scope"),
    ({"scope": "team"}, "team_required"),
    ({"scope": "company", "team_id": 1}, "invalid_input"),
    ({"scope": None}, "invalid_input"),
    ({"title": 5}, "invalid_input"),
    ({"team_id": True, "scope": "team"}, "invalid_input"),
    ({"team_id": "1", "scope": "team"}, "invalid_input"),
    ({"shortcut": ["a"]}, "invalid_input"),
])
async def test_bad_fields_are_refused(client: TestClient, people: dict[str, Any],
                                      fields: dict[str, Any], code: str) -> None:
    fields.setdefault("scope", "company")
    refused = await _add(client, people["admin"], 400, **fields)
    assert refused["error"] == code, refused
    assert await _listed(client, people["admin"]) == []


async def test_a_text_of_a_chat_lines_length_is_fine(client: TestClient,
                                                     people: dict[str, Any]) -> None:
    item = await _add(client, people["alice"], scope="personal", text="ü" * 2048,
                      title="  Long   one ", shortcut=" /Long_1 ")
    assert (item["title"], item["shortcut"]) == ("Long one", "long_1")
    await _json(await client.post(URL, headers=people["alice"].auth, data="[]"), 400)
    await _json(await client.put(f"{URL}/abc", headers=people["alice"].auth, json={}), 400)
    await _json(await client.put(f"{URL}/99999999999", headers=people["alice"].auth,
                                 json={}), 400)
    await _json(await client.put(f"{URL}/4242", headers=people["alice"].auth, json={
        "scope": "personal", "title": "t", "text": "t"}), 404)
    await _json(await client.post(URL, headers=people["admin"].auth, json={
        "scope": "team", "team_id": 4242, "title": "t", "text": "t"}), 404)


async def test_a_shortcut_names_one_response_per_shelf(
        client: TestClient, people: dict[str, Any]) -> None:
    admin, alice, team = people["admin"], people["alice"], people["team"]
    first = await _add(client, admin, scope="company", shortcut="hello")
    taken = await _add(client, admin, 409, scope="company", shortcut="/HELLO")
    assert taken["error"] == "shortcut_taken"
    # Other shelves have their own shortcuts.
    await _add(client, admin, scope="team", team_id=team, shortcut="hello")
    await _add(client, alice, scope="personal", shortcut="hello")
    # A response keeps its own shortcut when it changes; another cannot take it.
    await _put(client, admin, first, 200, title="Hi there")
    second = await _add(client, admin, scope="company", shortcut="hi")
    await _put(client, admin, second, 409, shortcut="hello")
    # Moving onto a shelf where the shortcut is taken is refused too.
    await _put(client, admin, first, 409, scope="team", team_id=team)
    # Without a shortcut, any number.
    for _ in range(3):
        await _add(client, admin, scope="company", shortcut=None)
    await _add(client, admin, scope="company", shortcut="")


async def test_two_at_once_cannot_take_one_shortcut(
        client: TestClient, people: dict[str, Any]) -> None:
    answers = await asyncio.gather(*(
        client.post(URL, headers=people["admin"].auth, json={
            "scope": "company", "title": f"Racer {n}", "text": "Go", "shortcut": "go"})
        for n in range(4)))
    assert sorted(answer.status for answer in answers) == [201, 409, 409, 409]
    assert len(await _listed(client, people["admin"])) == 1


async def test_a_full_shelf_takes_no_more(client: TestClient, broker: Broker,
                                          people: dict[str, Any]) -> None:
    alice = people["alice"]
    async with broker.engine.begin() as conn:
        await conn.execute(canned_responses.insert(), [
            {"technician_id": alice.technician.id, "title": f"n{n}", "text": "t",
             "created_at": 0.0, "updated_at": 0.0} for n in range(MAX_PER_SHELF)])
    full = await _add(client, alice, 409, scope="personal")
    assert full["error"] == "shelf_full"
    # Other shelves are not full, and changing one on the full shelf is fine.
    await _add(client, people["bob"], scope="personal")
    body = await _json(await client.get(URL, headers=alice.auth, params={"q": "n7"}), 200)
    await _put(client, alice, body["canned_responses"][0], 200, text="changed")


async def test_only_technicians_reach_canned_responses(
        client: TestClient, people: dict[str, Any]) -> None:
    alice = people["alice"]
    item = await _add(client, alice, scope="personal")
    assert (await client.get(URL)).status == 401
    started = await start_session(client, alice)
    token = (await join(client, started["key"]))["participant_token"]
    end_user = {"Authorization": f"Bearer {token}"}
    assert (await client.get(URL, headers=end_user)).status == 403
    assert (await client.delete(f"{URL}/{item['id']}", headers=end_user)).status == 403
    assert (await client.get("/api/v1/me/preferences", headers=end_user)).status == 403


async def test_the_console_uses_its_login_with_csrf(client: TestClient,
                                                    people: dict[str, Any]) -> None:
    alice = people["alice"]
    csrf = await login(client, alice.technician.email)
    fields = {"scope": "personal", "title": "From the console", "text": "Hi"}
    forged = await client.post(URL, json=fields)
    assert (forged.status, (await forged.json())["error"]) == (403, "csrf_failed")
    item = await _json(await client.post(URL, json=fields, headers={"X-CSRF-Token": csrf}), 201)
    listed = await _json(await client.get(URL), 200)
    assert [entry["id"] for entry in listed["canned_responses"]] == [item["id"]]
