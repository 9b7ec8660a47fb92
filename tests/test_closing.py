"""The technician's closing form (broker/closing): admins keep the categories; after the
end, the session's technicians and admins record a category, resolved and a ticket number,
and nobody else can; every refusal says why; each save is one audit record; the end user
never sees it; the technicians' transcript ends with it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from broker.audit import Action
from broker.core import Broker
from broker.transcripts import Reader

from .conftest import Tech, join, start_session

MakeTech = Callable[..., Awaitable[Tech]]
CATEGORIES = {"categories": [{"label": {"en": "Printer", "de": "Drucker"}},
                             {"label": {"en": "E-mail & calendar", "de": "E-Mail"}}]}


async def put_closing(client: TestClient, session_id: str, auth: dict[str, str], body: Any,
                      status: int) -> dict[str, Any]:
    response = await client.put(f"/api/v1/sessions/{session_id}/closing", json=body,
                                headers=auth)
    assert response.status == status, await response.text()
    return dict(await response.json())


async def records(broker: Broker, action: Action) -> list[Any]:
    return [r.public() async for r in broker.audit.records() if r.action == action]


async def test_admins_keep_the_categories(client: TestClient, broker: Broker,
                                          make_tech: MakeTech, tech: Tech) -> None:
    root = await make_tech("Root", admin=True)
    got = await client.get("/api/v1/closing-categories", headers=tech.auth)
    assert await got.json() == {"categories": []}
    for bad in ({"categories": "Printer"}, {"cats": []}, {"categories": [{"label": {}}]},
                {"categories": [{"label": {"fr": "Imprimante"}}]},
                {"categories": [{"label": {"en": "x" * 81}}]},
                {"categories": [{"id": "Not An Id", "label": {"en": "A"}}]},
                {"categories": [{"label": {"en": "Printer"}}, {"label": {"en": "printer"}}]},
                {"categories": [{"label": {"en": str(n)}} for n in range(51)]}):
        refused = await client.put("/api/v1/closing-categories", headers=root.auth, json=bad)
        assert refused.status == 400, bad
        assert (await refused.json())["error"] == "invalid_categories"
    forbidden = await client.put("/api/v1/closing-categories", headers=tech.auth,
                                 json=CATEGORIES)
    assert forbidden.status == 403
    stored = await client.put("/api/v1/closing-categories", headers=root.auth, json=CATEGORIES)
    assert stored.status == 200, await stored.text()
    assert await stored.json() == {"categories": [
        {"id": "printer", "label": {"en": "Printer", "de": "Drucker"}},
        {"id": "e-mail-calendar", "label": {"en": "E-mail & calendar", "de": "E-Mail"}}]}
    # Renamed (the id stays) and one added: a new id that does not clash.
    renamed = await client.put("/api/v1/closing-categories", headers=root.auth, json={
        "categories": [{"id": "printer", "label": {"en": "Printers"}},
                       {"label": {"en": "Printer!"}}]})
    assert [c["id"] for c in (await renamed.json())["categories"]] == ["printer", "printer-2"]
    assert await (await client.get("/api/v1/closing-categories", headers=tech.auth)).json() \
        == await renamed.json()
    changed = await records(broker, Action.CLOSING_CATEGORIES_CHANGED)
    assert [(r["actor"]["name"], r["details"]) for r in changed] == [
        ("Root", {"categories": ["printer", "e-mail-calendar"]}),
        ("Root", {"categories": ["printer", "printer-2"]})]


async def test_the_technicians_record_it_after_the_end(
        client: TestClient, broker: Broker, make_tech: MakeTech, tech: Tech) -> None:
    root, bob, carol = (await make_tech("Root", admin=True), await make_tech("Bob"),
                        await make_tech("Carol"))
    await client.put("/api/v1/closing-categories", headers=root.auth, json=CATEGORIES)
    started = await start_session(client, tech)
    session_id = started["session_id"]
    dana = {"Authorization": f"Bearer {(await join(client, started['key']))['participant_token']}"}
    invited = await client.post(f"/api/v1/sessions/{session_id}/collaborators",
                                headers=tech.auth, json={"technician_id": bob.technician.id})
    assert invited.status == 200, await invited.text()
    early = await put_closing(client, session_id, tech.auth, {"resolved": True}, 409)
    assert early["error"] == "session_not_ended"
    ended = await client.post(f"/api/v1/sessions/{session_id}/end", headers=tech.auth)
    assert ended.status == 200
    # Nobody else: another technician, the end user, nobody logged in; no such session.
    assert (await put_closing(client, session_id, carol.auth, {"resolved": True}, 403))[
        "error"] == "forbidden"
    await put_closing(client, session_id, dana, {"resolved": True}, 403)
    await put_closing(client, session_id, {}, {"resolved": True}, 401)
    await put_closing(client, "NoSuchSession0000000000", tech.auth, {"resolved": True}, 404)
    for bad, code in (({"category": "scanner"}, "unknown_category"),
                      ({"category": 3}, "invalid_closing"),
                      ({"resolved": "yes"}, "invalid_closing"),
                      ({"mood": "fine"}, "invalid_closing"),
                      ({"ticket": "T" * 65}, "invalid_ticket"),
                      ({"ticket": "INC-1\nDROP"}, "invalid_ticket"),
                      ({"ticket": "INC\u202e1"}, "invalid_ticket"),
                      ({"ticket": 42}, "invalid_ticket"),
                      ({}, "empty_closing"), ({"ticket": "   ", "category": None},
                                              "empty_closing")):
        refused = await put_closing(client, session_id, tech.auth, bad, 400)
        assert refused["error"] == code, bad
    for raw in (b"[1]", b"{not json"):
        garbage = await client.put(f"/api/v1/sessions/{session_id}/closing", data=raw,
                                   headers={**tech.auth, "Content-Type": "application/json"})
        assert garbage.status == 400
        assert (await garbage.json())["error"] == "bad_json"
    read = await client.get(f"/api/v1/sessions/{session_id}/closing", headers=tech.auth)
    assert await read.json() == {"closing": None}
    saved = await put_closing(client, session_id, tech.auth,
                              {"category": "printer", "resolved": False,
                               "ticket": " INC-2041 "}, 200)
    assert {k: saved[k] for k in ("category", "resolved", "ticket", "recorded_by")} == {
        "category": {"id": "printer", "label": {"en": "Printer", "de": "Drucker"}},
        "resolved": False, "ticket": "INC-2041",
        "recorded_by": {"id": tech.technician.id, "name": "Alice"}}
    # The collaborator changes it; the admin and the owner read it; Carol does not.
    changed = await put_closing(client, session_id, bob.auth,
                                {"category": "printer", "resolved": True,
                                 "ticket": "INC-2041"}, 200)
    assert changed["recorded_by"]["name"] == "Bob" and changed["resolved"] is True
    for who in (tech, root, bob):
        got = await client.get(f"/api/v1/sessions/{session_id}/closing", headers=who.auth)
        assert (await got.json())["closing"] == changed
    assert (await client.get(f"/api/v1/sessions/{session_id}/closing",
                             headers=carol.auth)).status == 403
    assert (await client.get(f"/api/v1/sessions/{session_id}/closing",
                             headers=dana)).status == 403
    # One audit record per save, by whoever saved it; none for the refusals.
    saves = await records(broker, Action.CLOSING_RECORDED)
    assert [(r["actor"]["name"], r["session_id"], r["details"]) for r in saves] == [
        ("Alice", session_id, {"category": "printer", "resolved": False, "ticket": "INC-2041"}),
        ("Bob", session_id, {"category": "printer", "resolved": True, "ticket": "INC-2041"})]
    # The end user's events say nothing of it.
    events = await (await client.get(f"/api/v1/sessions/{session_id}/events",
                                     headers=dana)).json()
    assert "INC-2041" not in str(events) and "printer" not in str(events)


async def test_the_transcript_ends_with_the_closing(client: TestClient, broker: Broker,
                                                    make_tech: MakeTech, tech: Tech) -> None:
    root = await make_tech("Root", admin=True)
    await client.put("/api/v1/closing-categories", headers=root.auth, json=CATEGORIES)
    started = await start_session(client, tech)
    session_id = started["session_id"]
    await join(client, started["key"])
    await client.post(f"/api/v1/sessions/{session_id}/end", headers=tech.auth)
    base = f"/api/v1/sessions/{session_id}/transcript"
    before = await (await client.get(f"{base}?format=text&lang=en", headers=tech.auth)).text()
    assert "== Closing ==" not in before
    await put_closing(client, session_id, tech.auth,
                      {"category": "e-mail-calendar", "ticket": "<b>INC-7</b>"}, 200)
    # An admin removes the category afterwards: the transcript keeps its name.
    await client.put("/api/v1/closing-categories", headers=root.auth, json={"categories": []})
    text = await (await client.get(f"{base}?format=text&lang=en", headers=tech.auth)).text()
    tail = text[text.index("== Closing =="):].splitlines()
    assert tail[:4] == ["== Closing ==", "Category: E-mail & calendar", "Resolved: -",
                        "Ticket number: <b>INC-7</b>"]
    assert tail[4].startswith("Recorded: ") and tail[4].endswith(" by Alice")
    german = await (await client.get(f"{base}?format=text&lang=de", headers=tech.auth)).text()
    assert "== Abschluss ==\nKategorie: E-Mail\nGelöst: -\nTicketnummer: <b>INC-7</b>" \
        in german
    # The end user's copy (no notes: by email, broker/transcriptmail) leaves it out.
    session = await broker.sessions.get(session_id)
    theirs = await broker.transcripts.readable(session, None, str, Reader("en", "UTC"))
    ours = await broker.transcripts.readable(session, "", str, Reader("en", "UTC"))
    assert theirs.closing is None and ours.closing is not None
    page = await (await client.get(f"{base}?format=html&lang=en", headers=tech.auth)).text()
    assert "&lt;b&gt;INC-7&lt;/b&gt;" in page and "<b>INC-7" not in page


async def test_the_reports_count_closings_and_resolved(client: TestClient, make_tech: MakeTech,
                                                       tech: Tech) -> None:
    """The newest save of each session counts: resolved in one of two closed sessions;
    per category too, each technician their own."""
    root, bob = await make_tech("Root", admin=True), await make_tech("Bob")
    await client.put("/api/v1/closing-categories", headers=root.auth, json=CATEGORIES)
    ids = []
    for _ in range(3):
        started = await start_session(client, tech)
        await client.post(f"/api/v1/sessions/{started['session_id']}/end", headers=tech.auth)
        ids.append(started["session_id"])
    await put_closing(client, ids[0], tech.auth, {"category": "printer", "resolved": False}, 200)
    await put_closing(client, ids[0], tech.auth, {"category": "printer", "resolved": True}, 200)
    await put_closing(client, ids[1], tech.auth, {"resolved": False, "ticket": "T-1"}, 200)
    body = await (await client.get("/api/v1/reports/technicians", headers=tech.auth)).json()
    (row,) = body["rows"]
    assert (row["started"], row["closings"], row["resolved_share"]) == (3, 2, 0.5)
    categories = await (await client.get("/api/v1/reports/categories", headers=tech.auth)).json()
    assert categories["rows"] == [
        {"category": "printer", "label": {"en": "Printer", "de": "Drucker"}, "sessions": 1,
         "resolved_share": 1.0},
        {"category": None, "label": None, "sessions": 1, "resolved_share": 0.0}]
    # Bob's own figures have none of Alice's; another's figures are for admins.
    theirs = await (await client.get("/api/v1/reports/categories", headers=bob.auth)).json()
    assert theirs["rows"] == []
    refused = await client.get(f"/api/v1/reports/categories?technician_id={tech.technician.id}",
                               headers=bob.auth)
    assert refused.status == 403
    everyone = await client.get("/api/v1/reports/categories", headers=root.auth)
    assert [r["sessions"] for r in (await everyone.json())["rows"]] == [1, 1]
