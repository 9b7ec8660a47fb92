"""Joining and taking over a session from the supervisor board (docs/supervision.md): the
supervisor becomes a collaborator, or the owner as after a handoff, with a note for the
old owner; every refusal says why; each act is exactly one audit record. And the end
user is told of a watch only when the operator's setting says so."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestClient

from broker.core import Broker
from broker.errors import Conflict, Forbidden, InvalidInput, NotFound
from broker.settings import Settings
from tests.conftest import Socket, Tech, join, open_socket, start_session
from tests.test_supervision import _call, _lead, _login, _team

MakeTech = Callable[..., Awaitable[Tech]]
ACTS = "supervisor.joined,supervisor.took_over,session.collaborator_added,session.handed_over"


async def _acts(client: TestClient, admin: Tech, session_id: str) -> list[tuple[str, str]]:
    """The session's collaborator and ownership records, oldest first: (action, actor)."""
    records = (await _call(client, "GET", f"/api/v1/audit?action={ACTS}&session_id="
                           f"{session_id}", admin))["records"]
    return [(r["action"], r["actor"]["name"]) for r in reversed(records)]


async def _refused(client: TestClient, path: str, who: Tech, status: int, code: str,
                   **kwargs: Any) -> None:
    response = await client.post(path, headers=who.auth, **kwargs)
    assert response.status == status, await response.text()
    assert (await response.json())["error"] == code


async def _scene(client: TestClient, make_tech: MakeTech) -> tuple[Tech, Tech, Tech, str]:
    """Root (admin), Anna (leads Printers), Bob (in Printers, owns a live session)."""
    root = await make_tech("Root", admin=True)
    anna, bob = await make_tech("Anna"), await make_tech("Bob")
    team = await _team(client, root, "Printers", anna, bob)
    await _lead(client, root, team, anna)
    started = await start_session(client, bob)
    return root, anna, bob, started["session_id"]


async def test_a_lead_joins_and_the_sessions_people_see_the_collaborator_arrive(
        client: TestClient, make_tech: MakeTech) -> None:
    root, anna, bob, session_id = await _scene(client, make_tech)
    tech = await open_socket(client, session_id, bob.token)
    path = f"/api/v1/sessions/{session_id}/supervision/join"
    joined = await _call(client, "POST", path, anna)
    assert joined["collaborator_ids"] == [anna.technician.id]
    assert joined["technician"]["id"] == bob.technician.id  # Bob still owns it
    event = await tech.next_event("technician_joined")
    assert (event["name"], event["author"]["name"]) == ("Anna", "Anna")
    # A collaborator now: Anna writes in the chat.
    await _call(client, "POST", f"/api/v1/sessions/{session_id}/messages", anna, ok=201,
                json={"text": "Hello, I am Bob's lead"})
    await _refused(client, path, anna, 409, "already_present")  # joining twice
    assert await _acts(client, root, session_id) == [("supervisor.joined", "Anna")]
    await tech.close()


async def test_joining_is_refused_with_a_reason(
        client: TestClient, make_tech: MakeTech, broker: Broker) -> None:
    root, anna, bob, session_id = await _scene(client, make_tech)
    carl, dora = await make_tech("Carl"), await make_tech("Dora")
    network = await _team(client, root, "Network", dora)
    await _lead(client, root, network, dora)  # leads another team
    path = f"/api/v1/sessions/{session_id}/supervision/join"
    await _refused(client, path, carl, 403, "forbidden")  # no supervisor
    await _refused(client, path, dora, 403, "forbidden")  # not one of her teams'
    await _refused(client, path, bob, 403, "forbidden")  # its own technician, no lead
    await _refused(client, "/api/v1/sessions/nosuchsession/supervision/join", anna, 404,
                   "not_found")
    own = (await start_session(client, anna))["session_id"]
    await _refused(client, f"/api/v1/sessions/{own}/supervision/join", anna, 409,
                   "already_present")
    await _call(client, "POST", f"/api/v1/sessions/{session_id}/end", bob)
    await _refused(client, path, anna, 409, "session_ended")
    # The service says the same to whoever calls it.
    with pytest.raises(Forbidden):
        await broker.supervision.join(carl.technician, session_id)
    with pytest.raises(NotFound):
        await broker.supervision.join(root.technician, "nosuchsession")
    with pytest.raises(Conflict):
        await broker.supervision.join(root.technician, session_id)
    assert await _acts(client, root, session_id) == []
    assert await _acts(client, root, own) == []


async def test_a_full_session_takes_no_supervisor(
        client: TestClient, make_tech: MakeTech, broker: Broker) -> None:
    root, anna, bob, session_id = await _scene(client, make_tech)
    for name in ("Erin", "Finn", "Gus"):
        guest = await make_tech(name)
        await _call(client, "POST", f"/api/v1/sessions/{session_id}/collaborators", bob,
                    json={"technician_id": guest.technician.id})
    await _refused(client, f"/api/v1/sessions/{session_id}/supervision/join", anna, 409,
                   "session_full")


async def test_a_lead_takes_over_with_a_note_and_the_owner_stays(
        client: TestClient, make_tech: MakeTech) -> None:
    root, anna, bob, _ = await _scene(client, make_tech)
    started = await start_session(client, bob)
    session_id = started["session_id"]
    user_token = (await join(client, started["key"]))["participant_token"]
    user = await open_socket(client, session_id, user_token)
    tech = await open_socket(client, session_id, bob.token)
    taken = await _call(client, "POST", f"/api/v1/sessions/{session_id}/supervision/take-over",
                        anna, json={"note": "  I will finish this one, thanks Bob  "})
    assert taken["technician"] == {"id": anna.technician.id, "name": "Anna"}
    assert taken["collaborator_ids"] == [bob.technician.id]  # stays, as with keep_sender
    # The end user sees the new technician as after a handoff, without the note.
    seen = await user.next_event("handed_over")
    assert (seen["to"], seen["from"], seen["reason"]) == ("Anna", "Bob", "taken_over")
    assert "note" not in seen and "I will finish" not in str(seen)
    await tech.next_event("handed_over")
    # Bob reads the note in the session's handoffs (his dashboard is told the same).
    history = (await _call(client, "GET", f"/api/v1/sessions/{session_id}/handoffs",
                           bob))["handoffs"]
    assert [(h["state"], h["reason"], h["note"], h["decided_by"]["name"])
            for h in history] == [("accepted", "taken_over",
                                   "I will finish this one, thanks Bob", "Anna")]
    # Anna owns it: she may end it; Bob may still write.
    await _call(client, "POST", f"/api/v1/sessions/{session_id}/messages", bob, ok=201,
                json={"text": "Anna takes it from here"})
    records = (await _call(client, "GET", "/api/v1/audit?action=supervisor.took_over",
                           root))["records"]
    assert [(r["actor"]["name"], r["session_id"], r["details"]["note"], r["details"]["from"],
             r["details"]["stays"]) for r in records] == [
        ("Anna", session_id, "I will finish this one, thanks Bob", "Bob", True)]
    assert await _acts(client, root, session_id) == [("supervisor.took_over", "Anna")]
    await _refused(client, f"/api/v1/sessions/{session_id}/supervision/take-over", anna,
                   409, "own_session", json={"note": "again"})
    # The transcript tells it with the note, in sentences.
    transcript = await client.get(f"/api/v1/sessions/{session_id}/transcript?format=text",
                                  headers=anna.auth)
    assert transcript.status == 200
    assert "Anna took the session over from Bob: " in await transcript.text()
    await user.close()
    await tech.close()


async def test_a_joined_admin_takes_over_and_the_owner_leaves(
        client: TestClient, make_tech: MakeTech) -> None:
    root, anna, bob, session_id = await _scene(client, make_tech)
    erin = await make_tech("Erin")
    # A transfer to Erin was waiting: taking over answers it (cancelled).
    await _call(client, "POST", f"/api/v1/sessions/{session_id}/transfer", bob, ok=201,
                json={"to_technician_id": erin.technician.id, "note": "Please take it"})
    await _call(client, "POST", f"/api/v1/sessions/{session_id}/supervision/join", root)
    taken = await _call(client, "POST", f"/api/v1/sessions/{session_id}/supervision/take-over",
                        root, json={"note": "Escalated", "keep_owner": False})
    assert taken["technician"]["name"] == "Root" and taken["collaborator_ids"] == []
    history = (await _call(client, "GET", f"/api/v1/sessions/{session_id}/handoffs",
                           root))["handoffs"]
    assert [(h["state"], h["to_technician"]["name"]) for h in history] == [
        ("cancelled", "Erin"), ("accepted", "Root")]
    assert (await _call(client, "GET", "/api/v1/handoffs", erin))["handoffs"] == []
    response = await client.get(f"/api/v1/sessions/{session_id}/handoffs", headers=bob.auth)
    assert response.status == 403  # Bob left with the session
    assert await _acts(client, root, session_id) == [("supervisor.joined", "Root"),
                                                     ("supervisor.took_over", "Root")]


async def test_taking_over_is_refused_with_a_reason(
        client: TestClient, make_tech: MakeTech, broker: Broker) -> None:
    root, anna, bob, session_id = await _scene(client, make_tech)
    carl, dora = await make_tech("Carl"), await make_tech("Dora")
    network = await _team(client, root, "Network", dora)
    await _lead(client, root, network, dora)
    path = f"/api/v1/sessions/{session_id}/supervision/take-over"
    note = {"json": {"note": "Mine now"}}
    await _refused(client, path, carl, 403, "forbidden", **note)
    await _refused(client, path, dora, 403, "forbidden", **note)
    await _refused(client, path, bob, 403, "forbidden", **note)
    await _refused(client, "/api/v1/sessions/nosuchsession/supervision/take-over", anna, 404,
                   "not_found", **note)
    for body, code in (({}, "note_required"), ({"note": "   "}, "note_required"),
                       ({"note": 5}, "note_required"), ({"note": "x" * 2001}, "note_too_long"),
                       ({"note": "ok", "keep_owner": "yes"}, "invalid_input")):
        await _refused(client, path, anna, 400, code, json=body)
    own = (await start_session(client, anna))["session_id"]
    await _refused(client, f"/api/v1/sessions/{own}/supervision/take-over", anna, 409,
                   "own_session", **note)
    await _call(client, "POST", f"/api/v1/sessions/{session_id}/end", bob)
    await _refused(client, path, anna, 409, "session_ended", **note)
    with pytest.raises(InvalidInput):
        await broker.supervision.take_over(root.technician, own, "")
    with pytest.raises(Forbidden):
        await broker.supervision.take_over(carl.technician, own, "Mine now")
    session = await broker.sessions.get(session_id)
    assert session.technician_id == bob.technician.id
    assert await _acts(client, root, session_id) == []
    assert await _acts(client, root, own) == []


async def _watch_once(client: TestClient, who: Tech, session_id: str, tech: Socket) -> None:
    """Open the watch socket until it is synced, then close it; the technician's socket
    sees the start and the stop."""
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        await _login(client, http, who.technician.email)
        ws = await http.ws_connect(client.make_url(f"/api/v1/sessions/{session_id}/watch"))
        while (await ws.receive_json(timeout=5))["type"] != "synced":
            pass
        assert (await tech.next("supervisor.watching"))["watching"] is True
        await ws.close()
    assert (await tech.next("supervisor.watching"))["watching"] is False


async def test_a_reload_is_told_who_watches(client: TestClient, make_tech: MakeTech) -> None:
    """The watch frames are not stored: a technician's new socket (a reload) is told anew
    of the watches open now, and of none once they closed."""
    root, anna, bob, session_id = await _scene(client, make_tech)
    tech = await open_socket(client, session_id, bob.token)
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        await _login(client, http, anna.technician.email)
        ws = await http.ws_connect(client.make_url(f"/api/v1/sessions/{session_id}/watch"))
        assert (await tech.next("supervisor.watching"))["watching"] is True
        await tech.close()
        reloaded = await open_socket(client, session_id, bob.token)
        told = await reloaded.next("supervisor.watching")
        assert (told["supervisor"]["name"], told["watching"]) == ("Anna", True)
        await ws.close()
    assert (await reloaded.next("supervisor.watching"))["watching"] is False
    await reloaded.close()
    again = await open_socket(client, session_id, bob.token)
    await again.say("Nobody watches now", "t9")
    while (frame := await again.next())["type"] != "event" or \
            frame["event"].get("text") != "Nobody watches now":
        assert frame["type"] != "supervisor.watching"
    await again.close()


async def _until_message(user: Socket, text: str) -> list[str]:
    """The frame types the end user gets until the chat line `text` arrives."""
    seen = []
    while True:
        frame = await user.next()
        seen.append(frame["type"])
        if frame["type"] == "supervision.notice":
            seen.append("watching" if frame["watching"] else "stopped")
        if frame["type"] == "event" and frame["event"].get("text") == text:
            return seen


async def test_the_end_user_is_not_told_by_default(
        client: TestClient, make_tech: MakeTech) -> None:
    root, anna, bob, _ = await _scene(client, make_tech)
    started = await start_session(client, bob)
    token = (await join(client, started["key"]))["participant_token"]
    user = await open_socket(client, started["session_id"], token)
    tech = await open_socket(client, started["session_id"], bob.token)
    await _watch_once(client, anna, started["session_id"], tech)
    await tech.say("Still here", "t1")
    assert "supervision.notice" not in await _until_message(user, "Still here")
    # Nor when they reload while a supervisor watches.
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        await _login(client, http, anna.technician.email)
        ws = await http.ws_connect(client.make_url(
            f"/api/v1/sessions/{started['session_id']}/watch"))
        await tech.next("supervisor.watching")
        await user.close()
        user = await open_socket(client, started["session_id"], token)
        await tech.say("Still watched", "t2")
        assert "supervision.notice" not in await _until_message(user, "Still watched")
        await ws.close()
    await user.close()
    await tech.close()


class TestTheSettingTellsTheEndUser:
    @pytest.fixture
    def settings(self, tmp_path: Path, database_url: str) -> Settings:
        return Settings(data_dir=tmp_path / "data", port=8080, database_url=database_url,
                        supervision_tell_end_user=True)

    async def test_the_end_user_is_told_when_a_watch_starts_and_stops(
            self, client: TestClient, make_tech: MakeTech) -> None:
        root, anna, bob, _ = await _scene(client, make_tech)
        started = await start_session(client, bob)
        token = (await join(client, started["key"]))["participant_token"]
        user = await open_socket(client, started["session_id"], token)
        tech = await open_socket(client, started["session_id"], bob.token)
        await _watch_once(client, anna, started["session_id"], tech)
        await tech.say("Still here", "t1")
        seen = await _until_message(user, "Still here")
        assert [s for s in seen if s in ("watching", "stopped")] == ["watching", "stopped"]
        # A watch open while the end user reloads: the new socket is told of it.
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
            await _login(client, http, anna.technician.email)
            ws = await http.ws_connect(client.make_url(
                f"/api/v1/sessions/{started['session_id']}/watch"))
            assert (await user.next("supervision.notice"))["watching"] is True
            await user.close()
            user = await open_socket(client, started["session_id"], token)
            assert (await user.next("supervision.notice"))["watching"] is True
            await ws.close()
        assert (await user.next("supervision.notice"))["watching"] is False
        await tech.next("supervisor.watching")
        await tech.next("supervisor.watching")
        # Technicians never get the end user's frame.
        await user.say("Thanks", "u1")
        while (frame := await tech.next())["type"] != "event" or \
                frame["event"].get("text") != "Thanks":
            assert frame["type"] != "supervision.notice"
        await user.close()
        await tech.close()
