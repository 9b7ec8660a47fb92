"""Every audited act of the users' journeys produces exactly one record, with the right actor
and session, and no record holds a credential (docs/audit.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, CookieJar

from broker.audit import Action, Record
from broker.clock import FakeClock
from broker.rtc.model import Source
from broker.settings import Settings
from web import create_app
from web.state import get_broker

from .conftest import PASSWORD, csrf_from
from .hardening_support import Broker, journey, running
from .test_hardening_logs import _leaks

A = Action
# Who did it, as (kind, name); the session as a name the test gives it.
ANA, BOB, ROOT = ("technician", "Ana"), ("technician", "Bob"), ("technician", "Root")
KIM, LEE, MAX, ZOE = (("end_user", name) for name in ("Kim", "Lee", "Max", "Zoe"))
BROKER, NOBODY = ("system", "broker"), ("anonymous", "")
Act = tuple[Action, tuple[str, str], str | None]


async def _call(broker: Broker, method: str, path: str, token: str, status: int,
                body: dict[str, Any] | None = None) -> Any:
    _, _, answer = await broker.request(method, path, status=status, json=body,
                                        headers={"Authorization": f"Bearer {token}"})
    return json.loads(answer) if answer else None


def _acts(records: list[Record], names: dict[str | None, str | None]) -> list[Act]:
    return [(Action(r.action), (r.actor_kind, r.actor_name), names.get(r.session_id, "?"))
            for r in records]


async def test_every_act_is_recorded_once(tmp_path: Path, clock: FakeClock,
                                          database_url: str) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", database_url=database_url,
                              transfer_min_free_bytes=0, seats=2,
                              sweep_interval_seconds=3600), clock=clock)
    async with running(app, tmp_path) as broker:
        core = get_broker(app)
        ana = await core.technicians.add("ana@example.com", "Ana", PASSWORD)
        bob = await core.technicians.add("bob@example.com", "Bob", PASSWORD)
        root = await core.technicians.add("root@example.com", "Root", PASSWORD, is_admin=True)
        await core.technicians.add("dee@example.com", "Dee", PASSWORD)
        ana_token = await core.technicians.create_token(ana.id)
        bob_token = await core.technicians.create_token(bob.id)
        root_token = await core.technicians.create_token(root.id)
        expected: list[Act] = [
            (A.TECHNICIAN_CREATED, BROKER, None), (A.TECHNICIAN_CREATED, BROKER, None),
            (A.TECHNICIAN_CREATED, BROKER, None), (A.TECHNICIAN_CREATED, BROKER, None),
            (A.TOKEN_CREATED, BROKER, None),
            (A.TOKEN_CREATED, BROKER, None), (A.TOKEN_CREATED, BROKER, None)]

        # The hardening journey: logins, three sessions joined three ways, a file up and
        # down twice, transcripts, logout.
        j = await journey(broker, "ana@example.com", ana_token)
        names: dict[str | None, str | None] = {None: None, j.session_id: "s1"}
        sessions = {sid for r in [r async for r in core.audit.records()] if (sid := r.session_id)}
        expected += [
            (A.LOGIN_FAILED, NOBODY, None), (A.LOGIN, ANA, None),
            (A.SESSION_STARTED, ANA, "s1"), (A.KEY_ISSUED, ANA, "s1"),
            (A.KEY_REDEEMED, KIM, "s1"),
            (A.SESSION_STARTED, ANA, "s2"), (A.KEY_ISSUED, ANA, "s2"),
            (A.KEY_REDEEMED, LEE, "s2"),
            (A.SESSION_STARTED, ANA, "s3"), (A.KEY_ISSUED, ANA, "s3"),
            (A.KEY_REDEEMED, MAX, "s3"),
            (A.FILE_UPLOADED, KIM, "s1"), (A.FILE_DOWNLOADED, KIM, "s1"),
            (A.FILE_DOWNLOADED, ANA, "s1"), (A.LOGOUT, ANA, None)]
        by_start = [r.session_id async for r in core.audit.records()
                    if r.action == A.SESSION_STARTED]
        names.update({by_start[1]: "s2", by_start[2]: "s3"})
        assert sessions == {j.session_id, *by_start[1:]}

        # Screen sharing and control in session 1 (through the domain, as the sockets do).
        technician = core.sessions.technician_actor(ana)
        _, kim = await core.sessions.participant(j.participant_token)
        _, agent = await core.sessions.participant(j.secrets["agent participant"])
        people = {actor.sender: actor for actor in (kim, agent)}
        share = await core.shares.request(j.session_id, technician, "sh1")
        sharer = people[share.sharer.sender]
        await core.shares.consent(j.session_id, sharer, "sh1", accept=False)
        await core.shares.request(j.session_id, technician, "sh2")
        await core.shares.consent(j.session_id, sharer, "sh2", accept=True)
        await core.shares.start(j.session_id, sharer, "sh2")
        await core.shares.stop(j.session_id, technician, "sh2")
        await core.agents.hello(j.session_id, agent, "1.0", "linux")
        await core.shares.request(j.session_id, technician, "sh3", source=Source.AGENT.value)
        await core.shares.consent(j.session_id, agent, "sh3", accept=True)
        await core.shares.start(j.session_id, agent, "sh3")
        await core.shares.request_control(j.session_id, technician, "sh3")
        await core.shares.answer_control(j.session_id, agent, "sh3", accept=True)
        await core.shares.stop_control(j.session_id, technician, "sh3")
        user = ("end_user", sharer.name)
        expected += [
            (A.SHARE_REQUESTED, ANA, "s1"), (A.SHARE_REFUSED, user, "s1"),
            (A.SHARE_REQUESTED, ANA, "s1"), (A.SHARE_CONSENTED, user, "s1"),
            (A.SHARE_STOPPED, ANA, "s1"),
            (A.SHARE_REQUESTED, ANA, "s1"), (A.SHARE_CONSENTED, ("end_user", agent.name), "s1"),
            (A.CONTROL_GRANTED, ("end_user", agent.name), "s1"),
            (A.CONTROL_REVOKED, ANA, "s1")]

        # A session of its own: notes, a collaborator, a handover, an admin joining from the
        # supervisor board and taking it over, the end, the closing form.
        s4 = await _call(broker, "POST", "/api/v1/sessions", ana_token, 201, {})
        names[s4["session_id"]] = "s4"
        path = f"/api/v1/sessions/{s4['session_id']}"
        await _call(broker, "POST", "/api/v1/join", "", 200, {"key": s4["key"], "name": "Zoe"})
        await _call(broker, "PUT", path + "/notes", ana_token, 200, {"notes": "printer"})
        await _call(broker, "POST", path + "/collaborators", ana_token, 200,
                    {"technician_id": bob.id})
        handoff = await _call(broker, "POST", path + "/transfer", ana_token, 201,
                              {"note": "yours", "to_technician_id": bob.id})
        await _call(broker, "POST", f"/api/v1/handoffs/{handoff['handoff_id']}/accept",
                    bob_token, 200)
        await _call(broker, "POST", path + "/supervision/join", root_token, 200)
        await _call(broker, "POST", path + "/supervision/take-over", root_token, 200,
                    {"note": "I finish this one"})
        await _call(broker, "POST", path + "/end", root_token, 200)
        await _call(broker, "PUT", path + "/closing", root_token, 200,
                    {"resolved": True, "ticket": "INC-7"})
        expected += [
            (A.SESSION_STARTED, ANA, "s4"), (A.KEY_ISSUED, ANA, "s4"),
            (A.KEY_REDEEMED, ZOE, "s4"), (A.NOTES_CHANGED, ANA, "s4"),
            (A.COLLABORATOR_ADDED, ANA, "s4"), (A.SESSION_HANDED_OVER, BOB, "s4"),
            (A.SUPERVISOR_JOINED, ROOT, "s4"), (A.SUPERVISOR_TOOK_OVER, ROOT, "s4"),
            (A.SESSION_ENDED, ROOT, "s4"), (A.CLOSING_RECORDED, ROOT, "s4")]

        # A key withdrawn; two wrong keys typed in one minute.
        s5 = await _call(broker, "POST", "/api/v1/sessions", ana_token, 201, {})
        names[s5["session_id"]] = "s5"
        await _call(broker, "POST", f"/api/v1/sessions/{s5['session_id']}/revoke", ana_token,
                    200)
        for _ in range(2):
            await broker.request("POST", "/api/v1/join", status=404, json={"key": "123456789"})
        clock.advance(60)
        await core.audit.sweep()
        expected += [
            (A.SESSION_STARTED, ANA, "s5"), (A.KEY_ISSUED, ANA, "s5"),
            (A.KEY_REVOKED, ANA, "s5"), (A.SESSION_ENDED, ANA, "s5"),
            (A.KEY_GUESSES_FAILED, NOBODY, None)]

        # An admin's changes.
        made = await _call(broker, "POST", "/api/v1/technicians", root_token, 201,
                           {"email": "cy@example.com", "name": "Cy"})
        await _call(broker, "POST", f"/api/v1/technicians/{made['id']}/password-reset",
                    root_token, 200)
        team = await _call(broker, "POST", "/api/v1/teams", root_token, 201, {"name": "Desk"})
        await _call(broker, "POST", f"/api/v1/teams/{team['team_id']}/members", root_token, 200,
                    {"technician_id": bob.id})
        await _call(broker, "DELETE", f"/api/v1/teams/{team['team_id']}/members/{bob.id}",
                    root_token, 200)
        await _call(broker, "PUT", f"/api/v1/teams/{team['team_id']}/message-email", root_token,
                    200, {"email": "desk@example.com"})
        canned = await _call(broker, "POST", "/api/v1/canned-responses", root_token, 201,
                             {"scope": "company", "title": "Hi", "text": "Hello!"})
        await _call(broker, "PUT", f"/api/v1/canned-responses/{canned['id']}", root_token,
                    200, {"scope": "company", "title": "Hi", "text": "Hello there!"})
        await _call(broker, "DELETE", f"/api/v1/canned-responses/{canned['id']}",
                    root_token, 204)
        form = await _call(broker, "GET", "/api/v1/intake-form", root_token, 200)
        form.pop("teams")
        await _call(broker, "PUT", "/api/v1/intake-form", root_token, 200, form)
        await _call(broker, "PUT", "/api/v1/closing-categories", root_token, 200,
                    {"categories": [{"label": {"en": "Printer"}}]})
        hook = await _call(broker, "POST", "/api/v1/webhooks", root_token, 201, {
            "url": "https://hooks.example.com/in?token=abc", "events": ["session.ended"]})
        j.keep("webhook secret", hook["secret"])
        await _call(broker, "PATCH", f"/api/v1/webhooks/{hook['id']}", root_token, 200,
                    {"description": "Desk"})
        rotated = await _call(broker, "POST", f"/api/v1/webhooks/{hook['id']}/rotate",
                              root_token, 200)
        j.keep("rotated webhook secret", rotated["secret"])
        await _call(broker, "DELETE", f"/api/v1/webhooks/{hook['id']}", root_token, 204)
        await _call(broker, "PATCH", f"/api/v1/technicians/{ana.id}", root_token, 200,
                    {"disabled": True})
        expected += [
            (A.TECHNICIAN_CREATED, ROOT, None), (A.PASSWORD_RESET, ROOT, None),
            (A.TEAM_CREATED, ROOT, None), (A.TEAM_MEMBER_ADDED, ROOT, None),
            (A.TEAM_MEMBER_REMOVED, ROOT, None), (A.TEAM_CHANGED, ROOT, None),
            (A.CANNED_ADDED, ROOT, None), (A.CANNED_CHANGED, ROOT, None),
            (A.CANNED_REMOVED, ROOT, None), (A.INTAKE_FORM_CHANGED, ROOT, None),
            (A.CLOSING_CATEGORIES_CHANGED, ROOT, None),
            (A.WEBHOOK_ADDED, ROOT, None), (A.WEBHOOK_CHANGED, ROOT, None),
            (A.WEBHOOK_ROTATED, ROOT, None), (A.WEBHOOK_REMOVED, ROOT, None),
            (A.TECHNICIAN_CHANGED, ROOT, None), (A.TOKEN_REVOKED, ROOT, None)]

        # Two seats, taken by Bob and Dee: Root takes Bob's, then ends Dee's login.
        await _seats(broker, root_token, expected)

        records = [r async for r in core.audit.records()]
        assert (await core.audit.verify()).ok
    assert _acts(records, names) == expected
    text = "\n".join(json.dumps(r.public()) for r in records)
    assert not _leaks(text, j), _leaks(text, j)
    assert "token=abc" not in text
    # Every act of a request has its client's address; the shares were made in this
    # process (no request), as were the broker's own acts.
    in_process = {A.SHARE_REQUESTED, A.SHARE_REFUSED, A.SHARE_CONSENTED, A.SHARE_STOPPED,
                  A.CONTROL_GRANTED, A.CONTROL_REVOKED}
    assert {r.address for r in records if r.actor_kind != "system"
            and r.action not in in_process} == {"127.0.0.1"}
    assert {r.address for r in records if r.action in in_process} == {None}


async def _log_in(broker: Broker, email: str, password: str = PASSWORD,
                  status: int = 303) -> tuple[ClientSession, str]:
    """A browser of its own logging in; returns it and the page it was shown."""
    http = ClientSession(cookie_jar=CookieJar(unsafe=True))
    other = Broker(http, broker.base)
    _, _, page = await other.request("GET", "/login", status=200)
    _, _, answer = await other.request("POST", "/login", status=status, data={
        "email": email, "password": password, "_csrf": csrf_from(page.decode())})
    return http, answer.decode()


async def _seats(broker: Broker, root_token: str, expected: list[Act]) -> None:
    bob, _ = await _log_in(broker, "bob@example.com")
    dee, _ = await _log_in(broker, "dee@example.com")
    root, page = await _log_in(broker, "root@example.com", status=409)
    try:
        logins = (await _call(broker, "GET", "/api/v1/logins", root_token, 200))["logins"]
        held = {login["technician"]["name"]: login["login_id"] for login in logins}
        await Broker(root, broker.base).request("POST", "/login/seat", status=303, data={
            "end": held["Bob"], "_csrf": csrf_from(page)})
        await _call(broker, "POST", f"/api/v1/logins/{held['Dee']}/end", root_token, 204)
    finally:
        for http in (bob, dee, root):
            await http.close()
    expected += [(A.LOGIN, BOB, None), (A.LOGIN, ("technician", "Dee"), None),
                 (A.SEAT_TAKEN_OVER, ROOT, None), (A.LOGIN, ROOT, None),
                 (A.LOGIN_ENDED, ROOT, None)]
