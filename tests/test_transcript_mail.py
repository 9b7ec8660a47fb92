"""Transcripts by email (broker/transcriptmail) to a real aiosmtpd server: the company's,
a team's and a technician's own copies arrive at a session's end, each address once; the
end user's copy goes only to an address confirmed with the single-use code sent to it
(wrong, reused and expired codes refused, guesses limited), without the technicians'
notes, in the end user's language."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.schema import deliveries
from broker.settings import Settings
from web import create_app
from web.state import get_broker

from .conftest import Tech, join, start_session
from .fakes.smtp import SmtpServer, free_port

MakeTech = Callable[..., Awaitable[Tech]]


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    with SmtpServer(free_port()) as server:
        yield server


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path, clock: FakeClock, smtp: SmtpServer,
                 database_url: str) -> TestClient:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, smtp_host="127.0.0.1",
        smtp_port=smtp.port, smtp_tls="none", mail_from="help@example.com",
        product_name="Acme Help", delivery_poll_seconds=0.05, smtp_timeout_seconds=5,
        redeem_free_failures=3)
    return await aiohttp_client(create_app(settings, clock=clock))  # type: ignore[no-any-return]


@pytest.fixture
async def admin(make_tech: MakeTech) -> Tech:
    return await make_tech("Root", admin=True)


async def arrived(smtp: SmtpServer, count: int) -> list[EmailMessage]:
    """The inbox once it holds `count` messages (bounded)."""
    async with asyncio.timeout(10):
        while len(smtp.inbox.messages) < count:
            await asyncio.sleep(0.02)
    return list(smtp.inbox.messages)


def parts(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    return (str(plain.get_content()) if plain else "",  # type: ignore[union-attr]
            str(html.get_content()) if html else "")  # type: ignore[union-attr]


async def put(client: TestClient, who: Tech, path: str, body: dict[str, Any]) -> None:
    response = await client.put(path, headers=who.auth, json=body)
    assert response.status == 200, await response.text()


async def chat(client: TestClient, tech: Tech, *, lang: str = "en",
               ) -> tuple[str, dict[str, str]]:
    """A session Dana joined, with a line from each and a note; its id and Dana's
    credential (her page's language `lang`)."""
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    session_id = started["session_id"]
    dana = {"Authorization": f"Bearer {joined['participant_token']}", "Accept-Language": lang,
            "Cookie": "tz=Europe/Berlin"}
    for auth, text in ((dana, "My printer is offline"), (tech.auth, "Switch it on, please")):
        posted = await client.post(f"/api/v1/sessions/{session_id}/messages", headers=auth,
                                   json={"text": text})
        assert posted.status == 201, await posted.text()
    noted = await client.put(f"/api/v1/sessions/{session_id}/notes", headers=tech.auth,
                             json={"notes": "Customer has an old driver"})
    assert noted.status == 200, await noted.text()
    return session_id, dana


async def end(client: TestClient, tech: Tech, session_id: str) -> None:
    response = await client.post(f"/api/v1/sessions/{session_id}/end", headers=tech.auth)
    assert response.status == 200, await response.text()


async def test_three_levels_arrive_each_address_once(
        client: TestClient, admin: Tech, tech: Tech, make_tech: MakeTech,
        smtp: SmtpServer) -> None:
    alice = tech.technician.email
    await put(client, admin, "/api/v1/transcript-mail", {
        "enabled": True, "addresses": ["desk@example.com", alice.upper()],
        "language": "de", "time_zone": "Europe/Berlin"})
    team = await (await client.post("/api/v1/teams", headers=admin.auth,
                                     json={"name": "Tier 1"})).json()
    other = await (await client.post("/api/v1/teams", headers=admin.auth,
                                     json={"name": "Tier 2"})).json()
    await client.post(f"/api/v1/teams/{team['team_id']}/members", headers=admin.auth,
                      json={"technician_id": tech.technician.id})
    await put(client, admin, f"/api/v1/teams/{team['team_id']}/transcript-mail", {
        "enabled": True, "addresses": ["tier1@example.com", "Desk@example.com"]})
    # A level that is off sends nothing, and Tier 2 is not Alice's team anyway.
    await put(client, admin, f"/api/v1/teams/{other['team_id']}/transcript-mail", {
        "enabled": False, "addresses": ["tier2@example.com"]})
    await put(client, tech, "/api/v1/me/preferences", {"transcript_email": True,
                                                       "transcript_language": "en"})
    bob = await make_tech("Bob")  # not in the session: nothing for him
    await put(client, bob, "/api/v1/me/preferences", {"transcript_email": True})
    session_id, _ = await chat(client, tech)
    await end(client, tech, session_id)
    messages = await arrived(smtp, 3)
    to = sorted(address.lower() for rcpt in smtp.inbox.recipients for address in rcpt)
    assert to == sorted(["desk@example.com", alice.lower(), "tier1@example.com"])
    by_address = {rcpt[0].lower(): m for rcpt, m in zip(smtp.inbox.recipients, messages,
                                                        strict=True)}
    desk = by_address["desk@example.com"]  # the company's: German, Berlin time
    assert desk["Subject"] == "Protokoll der Support-Sitzung: Guest"  # the name she joined with
    assert desk["Content-Language"] == "de"
    text, html = parts(desk)
    for body in (text, html):
        assert "My printer is offline" in body and "Switch it on, please" in body
        assert "Customer has an old driver" in body  # technicians read the notes
    assert "Mitteleuropäische" in text and "Notizen" in text
    assert "<h1>Protokoll der Support-Sitzung</h1>" in html
    # Alice's address is the company's first: one copy, the company's (German).
    assert by_address[alice.lower()]["Content-Language"] == "de"
    tier1 = by_address["tier1@example.com"]
    assert tier1["Subject"] == "Support session transcript: Guest"
    assert "Times in: UTC" in parts(tier1)[0]
    # Ended again (or on another node): nobody gets it twice.
    session = await get_broker(client.app).sessions.get(session_id)
    assert await get_broker(client.app).transcript_mail.session_ended(session) == 0
    await end(client, tech, session_id)
    await asyncio.sleep(0.3)  # the worker polls every 0.05 s: time enough to send more
    assert len(smtp.inbox.messages) == 3


async def test_levels_are_checked_and_admins_only(client: TestClient, admin: Tech,
                                                  tech: Tech) -> None:
    got = await client.get("/api/v1/transcript-mail", headers=admin.auth)
    assert await got.json() == {"enabled": False, "addresses": [], "language": "en",
                                "time_zone": "UTC"}
    for bad, code in (({"enabled": True}, "invalid_transcript_mail"),
                      ({"addresses": ["not an address"]}, "invalid_email"),
                      ({"language": "fr"}, "invalid_language"),
                      ({"time_zone": "Mars/Olympus"}, "invalid_time_zone"),
                      ({"addresses": [f"a{n}@example.com" for n in range(21)]},
                       "invalid_transcript_mail"), ({"colour": "red"},
                                                    "invalid_transcript_mail")):
        refused = await client.put("/api/v1/transcript-mail", headers=admin.auth, json=bad)
        assert refused.status == 400, bad
        assert (await refused.json())["error"] == code, bad
    assert (await client.get("/api/v1/transcript-mail", headers=tech.auth)).status == 403
    missing = await client.get("/api/v1/teams/999/transcript-mail", headers=admin.auth)
    assert missing.status == 404
    bad_pref = await client.put("/api/v1/me/preferences", headers=tech.auth,
                                json={"transcript_language": "fr"})
    assert bad_pref.status == 400


def code_in(message: EmailMessage) -> str:
    found = re.search(r"\b(\d{6})\b", parts(message)[0])
    assert found, parts(message)[0]
    return found.group(1)


async def copy(client: TestClient, session_id: str, auth: dict[str, str], body: Any,
               status: int, *, confirm: bool = False) -> dict[str, Any]:
    path = f"/api/v1/sessions/{session_id}/transcript-copy" + ("/confirm" if confirm else "")
    response = await client.post(path, headers=auth, json=body)
    assert response.status == status, await response.text()
    return dict(await response.json())


async def test_the_end_user_s_copy_goes_to_a_confirmed_address_only(
        client: TestClient, tech: Tech, make_tech: MakeTech, smtp: SmtpServer) -> None:
    session_id, dana = await chat(client, tech, lang="de")
    # Nobody but the session's end user asks.
    await copy(client, session_id, tech.auth, {"email": "dana@example.com"}, 403)
    other_id, other = await chat(client, await make_tech())
    await copy(client, session_id, other, {"email": "dana@example.com"}, 403)
    await copy(client, session_id, dana, {"email": "nope"}, 400)
    await copy(client, session_id, dana, {"code": "123456"}, 409, confirm=True)  # none yet
    asked = await copy(client, session_id, dana, {"email": "Dana@Example.com"}, 202)
    assert asked["email"] == "Dana@example.com" and not asked["confirmed"]
    (code_mail,) = await arrived(smtp, 1)
    assert code_mail["Subject"] == "Ihr Code für eine Kopie des Chats"
    assert smtp.inbox.recipients == [["Dana@example.com"]]
    code = code_in(code_mail)
    async with get_broker(client.app).engine.connect() as conn:  # stored sealed, as keys
        stored = (await conn.scalars(sa.select(deliveries.c.content))).all()
    assert stored and not [text for text in stored if code in (text or "")]
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    refused = await copy(client, session_id, dana, {"code": wrong}, 400, confirm=True)
    assert refused["error"] == "wrong_code"
    confirmed = await copy(client, session_id, dana, {"code": f" {code[:3]} {code[3:]} "}, 200,
                           confirm=True)
    assert confirmed["confirmed"] and confirmed["sent"] is False  # at the end
    reused = await copy(client, session_id, dana, {"code": code}, 409, confirm=True)
    assert reused["error"] == "no_code"
    again = await copy(client, session_id, dana, {"email": "eve@example.com"}, 409)
    assert again["error"] == "copy_confirmed"  # the address cannot be swapped afterwards
    await end(client, tech, session_id)
    messages = await arrived(smtp, 2)
    assert smtp.inbox.recipients[1] == ["Dana@example.com"]
    mine = messages[1]
    assert mine["Subject"] == "Ihre Support-Sitzung mit Alice"
    text, html = parts(mine)
    assert "My printer is offline" in text and "Switch it on, please" in html
    assert "old driver" not in text + html and "Notizen" not in text  # technicians' only
    assert "Europe/Berlin" in text  # her browser's time zone
    assert other_id != session_id
    await asyncio.sleep(0.3)
    assert len(smtp.inbox.messages) == 2


async def test_codes_expire_are_limited_and_guesses_lock_out(
        client: TestClient, tech: Tech, smtp: SmtpServer, clock: FakeClock) -> None:
    session_id, dana = await chat(client, tech)
    await copy(client, session_id, dana, {"email": "dana@example.com"}, 202)
    (first,) = await arrived(smtp, 1)
    clock.advance(901)  # transcript_code_seconds: 900
    expired = await copy(client, session_id, dana, {"code": code_in(first)}, 409, confirm=True)
    assert expired["error"] == "code_expired"
    await copy(client, session_id, dana, {"email": "dana@example.com"}, 202)
    code = code_in((await arrived(smtp, 2))[1])
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    for _ in range(3):  # the free failures (redeem_free_failures = 3)
        await copy(client, session_id, dana, {"code": wrong}, 400, confirm=True)
    await copy(client, session_id, dana, {"code": wrong}, 400, confirm=True)  # locks out
    locked = await copy(client, session_id, dana, {"code": code}, 429, confirm=True)
    assert locked["error"] == "rate_limited"  # even the right code waits
    clock.advance(2)
    done = await copy(client, session_id, dana, {"code": code}, 200, confirm=True)
    assert done["confirmed"]
    # A third code would be the limit; a fourth is never sent.
    later_id, later = await chat(client, tech)
    for _ in range(3):
        await copy(client, later_id, later, {"email": "someone@example.com"}, 202)
    too_many = await copy(client, later_id, later, {"email": "someone@example.com"}, 409)
    assert too_many["error"] == "too_many_codes"
    await arrived(smtp, 5)
    await asyncio.sleep(0.3)
    assert len(smtp.inbox.messages) == 5


async def test_a_copy_asked_for_after_the_end_goes_at_once(
        client: TestClient, tech: Tech, smtp: SmtpServer) -> None:
    session_id, dana = await chat(client, tech)
    await end(client, tech, session_id)
    await copy(client, session_id, dana, {"email": "dana@example.com"}, 202)
    code = code_in((await arrived(smtp, 1))[0])
    confirmed = await copy(client, session_id, dana, {"code": code}, 200, confirm=True)
    assert confirmed["sent"] is True
    mine = (await arrived(smtp, 2))[1]
    assert mine["Subject"] == "Your support session with Alice"
    assert "Switch it on, please" in parts(mine)[0]
