"""The readable transcript (web/transcript.py): sentences instead of event codes, in
English and German, at times in the reader's time zone, with the session's notes and
every transfer's note; the exports and the page agree; pushed pages are links; bidi
controls are shown, not obeyed. Runs on the loopback test server with a fake clock, so
every time is known."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.core import Broker
from broker.transcripts import Sentences, plain
from web.state import CATALOGS

from .conftest import PASSWORD, login
from .pages_support import NOTE, NOTES, Story, add_people, tell_story, tus_headers

RLO, LRI, PDI = "\u202e", "\u2066", "\u2069"


def client_sender(client: TestClient) -> Any:
    async def send(session_id: str, token: str, name: str, data: bytes) -> None:
        headers = tus_headers(token, name, len(data))
        created = await client.post(f"/api/v1/sessions/{session_id}/files/", headers=headers)
        assert created.status == 201, await created.text()
        patched = await client.patch(created.headers["Location"], data=data, headers={
            "Authorization": headers["Authorization"], "Tus-Resumable": "1.0.0",
            "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        assert patched.status == 204, await patched.text()
    return send


@pytest.fixture
async def story(client: TestClient, broker: Broker, clock: FakeClock) -> Story:
    return await tell_story(broker, client_sender(client), people=await add_people(broker),
                            clock=clock)


async def export(client: TestClient, story: Story, query: str) -> str:
    await login(client, "admin@example.com")
    response = await client.get(f"/api/v1/sessions/{story.session_id}/transcript?{query}")
    assert response.status == 200, await response.text()
    return await response.text()


async def test_the_text_export_tells_the_session_in_english(client: TestClient,
                                                            story: Story) -> None:
    text = await export(client, story, "format=text&lang=en&tz=Europe/Berlin")
    # The fake clock starts at 2027-01-15 08:00 UTC: 09:00 in Berlin, a minute a step.
    expected = [
        "End user: Dana Scully",
        "Technicians: Administrator, Bob Berger",  # Maria only declined
        "Ended: Jan 15, 2027, 9:08:00 AM (Bob Berger ended the session)",
        "Times in: Central European Time (Europe/Berlin)",
        "Notes:\n" + NOTES,
        "== Friday, January 15, 2027 ==",
        "[9:00:00 AM] * Administrator created the session",
        "[9:01:00 AM] * Dana Scully joined",
        "[9:02:00 AM] Dana Scully: Hello, my printer only prints blank pages.",
        "[9:02:00 AM] Administrator: open: example.com/help <https://example.com/help>",
        "[9:03:00 AM] * Administrator asked to see the screen",
        "[9:03:00 AM] * Dana Scully paused screen sharing",
        "[9:03:00 AM] * Dana Scully stopped screen sharing",
        "[9:04:00 AM] * Dana Scully sent the file printer-log.txt (920\u00a0B) (SHA-256 ",
        "[9:05:00 AM] * Administrator offered the session to Maria Weber: Can you take this?",
        "[9:05:00 AM] * Maria Weber declined the transfer: In a meeting until noon",
        f"[9:06:00 AM] * Administrator handed the session to Bob Berger: {NOTE}",
        "[9:07:00 AM] Bob Berger: Hello Dana, Bob here. I restarted the spooler; try again?",
        "[9:08:00 AM] * Bob Berger ended the session",
    ]
    for line in expected:
        assert line.replace(" AM", "\u202fAM") in text, text
    assert "share.paused" not in text and "handed_over" not in text


async def test_the_text_export_in_german_at_new_york_time(client: TestClient,
                                                          story: Story) -> None:
    text = await export(client, story, "format=text&lang=de&tz=America/New_York")
    for line in [
        "Endbenutzer: Dana Scully",
        "Notizen:\n" + NOTES,
        "== Freitag, 15. Januar 2027 ==",
        "[03:00:00] * Administrator hat die Sitzung erstellt",
        "[03:03:00] * Dana Scully hat die Bildschirmfreigabe angehalten",
        "[03:04:00] * Dana Scully hat die Datei printer-log.txt gesendet (920\u00a0B)",
        "[03:05:00] * Administrator hat die Sitzung Maria Weber angeboten: Can you take this?",
        "[03:05:00] * Maria Weber hat die Übergabe abgelehnt: In a meeting until noon",
        f"[03:06:00] * Administrator hat die Sitzung an Bob Berger übergeben: {NOTE}",
        "[03:08:00] * Bob Berger hat die Sitzung beendet",
    ]:
        assert line in text
    assert "Zeiten in: Nordamerikanische Ostküstenzeit (America/New_York)" in text


async def test_the_zone_comes_from_the_cookie_and_an_unknown_one_is_utc(
        client: TestClient, story: Story) -> None:
    client.session.cookie_jar.update_cookies({"tz": "Asia/Tokyo"})
    assert "[5:00:00\u202fPM] * Administrator created the session" in await export(
        client, story, "format=text&lang=en")
    for bad in ("../../etc/passwd", "Mars/Olympus_Mons", "x" * 100):
        client.session.cookie_jar.update_cookies({"tz": bad})
        text = await export(client, story, f"format=text&lang=en&tz={bad}")
        assert "[8:00:00\u202fAM] * Administrator created the session" in text
        assert "Times in: UTC" in text


async def test_the_html_export_and_the_page_link_and_isolate(client: TestClient,
                                                             story: Story) -> None:
    html = await export(client, story, "format=html&lang=en&tz=UTC")
    assert ('open: <a href="https://example.com/help" rel="noopener noreferrer nofollow" '
            'target="_blank">example.com/help</a>') in html
    assert "<bdi>Administrator</bdi> handed the session to <bdi>Bob Berger</bdi>: " \
           f'<q dir="auto">{NOTE}</q>' in html
    assert '<time datetime="2027-01-15T08:08:00+00:00">8:08:00\u202fAM</time>' in html
    page = await client.get(f"/sessions/{story.session_id}/transcript?lang=en&tz=UTC")
    assert page.status == 200
    body = await page.text()
    assert 'data-zone="UTC"' in body
    # The page's own sentences are the export's, and it offers both exports in its zone.
    for part in re.findall(r"<li class=\"line[^\n]*</li>", html):
        assert part in body
    assert (f'href="/api/v1/sessions/{story.session_id}/transcript?format=text&amp;tz=UTC"'
            in body)


async def test_bidi_controls_are_shown_in_names_lines_and_notes(
        client: TestClient, broker: Broker) -> None:
    admin, *_ = await add_people(broker)
    session, key = await broker.sessions.start(admin)
    joined = await broker.sessions.redeem(code=key.code, name=f"Eve{RLO}gnp.exe")
    await broker.sessions.post_message(session.id, joined.actor, f"look {LRI}here{PDI} now")
    await broker.sessions.set_notes(session.id, admin, f"note {RLO}x")
    await login(client, "admin@example.com")
    for kind in ("text", "html"):
        response = await client.get(
            f"/api/v1/sessions/{session.id}/transcript?format={kind}&lang=en")
        text = await response.text()
        assert not re.search("[\u202a-\u202e\u2066-\u2069]", text)
        assert "Eve[U+202E]gnp.exe" in text
        assert "look [U+2066]here[U+2069] now" in text
        assert "note [U+202E]x" in text


async def test_the_page_is_for_those_who_may_read_the_session(
        client: TestClient, broker: Broker, story: Story) -> None:
    path = f"/sessions/{story.session_id}/transcript"
    response = await client.get(path, allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/login")
    await broker.technicians.add("carol@example.com", "Carol", PASSWORD)
    await login(client, "carol@example.com")
    assert (await client.get(path)).status == 403
    await login(client, "bob@example.com")  # the owner now
    assert (await client.get(path)).status == 200


async def test_only_a_technicians_open_line_pushes_a_page(client: TestClient,
                                                          broker: Broker) -> None:
    admin, *_ = await add_people(broker)
    session, key = await broker.sessions.start(admin)
    joined = await broker.sessions.redeem(code=key.code, name="Dana")
    tech = broker.sessions.technician_actor(admin)
    for actor, text in [(tech, "open: example.com/help"), (tech, "OPEN: http://x.org/a b"),
                        (tech, "open: javascript:alert(1)"), (tech, "open: the printer"),
                        (joined.actor, "open: example.com/phish")]:
        await broker.sessions.post_message(session.id, actor, text)
    events = await broker.sessions.events_after(session.id)
    pushed = [(e.data["text"], e.data.get("open_url")) for e in events if e.type == "message"]
    assert pushed == [("open: example.com/help", "https://example.com/help"),
                      ("OPEN: http://x.org/a b", "http://x.org/a"),
                      ("open: javascript:alert(1)", None), ("open: the printer", None),
                      ("open: example.com/phish", None)]


async def test_a_customers_request_in_sentences(client: TestClient, broker: Broker,
                                                clock: FakeClock) -> None:
    """A request from the portal (broker/intake): opened by the customer, taken from the
    queue with its note; a missed response target, in English and German."""
    admin, _, bob = await add_people(broker)
    (team,) = await broker.teams.all()
    await broker.roster.dashboard_opened(bob.id)
    response = await client.post("/api/v1/requests", json={
        "name": "Carla Kunde", "email": "carla@example.com", "severity": "high",
        "description": "The printer prints nothing."})
    assert response.status == 201, await response.text()
    session_id = (await response.json())["session_id"]
    (waiting,) = await broker.handoffs.pending_for(bob)
    clock.advance(60)
    await broker.handoffs.accept(waiting.id, bob)
    await login(client, "admin@example.com")
    text = await (await client.get(
        f"/api/v1/sessions/{session_id}/transcript?lang=en&tz=UTC")).text()
    assert ("[8:00:00\u202fAM] * Carla Kunde asked for help (severity: high); the request "
            "waits in the queue Tier 2") in text
    assert ("[8:01:00\u202fAM] * Bob Berger took the request from the queue Tier 2: "
            "[high] The printer prints nothing.") in text
    assert "Technicians: Bob Berger\n" in text  # a queue is no technician
    sentences = Sentences(lambda message: message, "en")
    breached = sentences.event("request.breached", None, {
        "severity": "critical", "due_at": 0, "target_seconds": 3600, "business_hours": True})
    assert plain(breached) == ("Nobody answered within the response target (1 hour in "
                               "business hours, severity: critical)")
    german = Sentences(client.app[CATALOGS].gettext("de"), "de")
    assert plain(german.event("request.breached", None, {
        "severity": "standard", "due_at": 0, "target_seconds": 14400,
        "business_hours": False})) == ("Niemand hat innerhalb der Antwortfrist geantwortet "
                                       "(4 Stunden, Dringlichkeit: normal)")
