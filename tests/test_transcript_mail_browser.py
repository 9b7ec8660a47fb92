"""The end user's copy of the chat by email in real Chromium, on a phone in German and on
a desktop in English: after the end they type their address, the code arrives at a real
aiosmtpd server, a wrong code is refused, the right one sends the copy; and the admin
page sets the company's level."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from broker.transcriptmail import COMPANY

from .browser_support import (
    PASSWORD,
    SCREENSHOTS,
    LiveBroker,
    People,
    expect,
    live_broker,
    require_chromium,
    screenshot,
)
from .browser_support import people as people  # noqa: F401 - a fixture
from .fakes.smtp import SmtpServer, free_port
from .pages_support import PHONE, assert_fits, log_in_as
from .test_pages_browser_enduser import chat_with

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1366, "height": 850}
WORDS = {
    "en": {"send": "Send me a code", "confirm": "Confirm", "email": "Your email address",
           "sent": "We sent a code to", "done": "A copy of this chat is on its way to",
           "wrong": "That is not the code we sent."},
    "de": {"send": "Code senden", "confirm": "Bestätigen", "email": "Ihre E-Mail-Adresse",
           "sent": "Wir haben einen Code an", "done": "Eine Kopie dieses Chats ist unterwegs",
           "wrong": "Das ist nicht der Code, den wir gesendet haben."},
}


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    with SmtpServer(free_port()) as server:
        yield server


@pytest.fixture
async def live(tmp_path: Path, smtp: SmtpServer) -> AsyncIterator[LiveBroker]:
    require_chromium()
    async with live_broker(tmp_path / "data", smtp_host="127.0.0.1", smtp_port=smtp.port,
                           smtp_tls="none", mail_from="help@example.com",
                           delivery_poll_seconds=0.05) as broker:
        yield broker


async def inbox(smtp: SmtpServer, count: int) -> list[Any]:
    async with asyncio.timeout(10):
        while len(smtp.inbox.messages) < count:
            await asyncio.sleep(0.02)
    return list(smtp.inbox.messages)


@pytest.mark.parametrize(("lang", "viewport"), [("de", PHONE), ("en", DESKTOP)])
async def test_the_end_user_gets_a_copy_at_a_confirmed_address(
        live: LiveBroker, people: People, smtp: SmtpServer, lang: str,
        viewport: dict[str, int]) -> None:
    words = WORDS[lang]
    user, technician, session_id = await chat_with(
        live, people, viewport=viewport, locale=lang,
        extra_http_headers={"Accept-Language": lang})
    await expect(user.locator("#transcript-copy")).to_be_hidden()
    await live.broker.sessions.end(session_id, live.broker.sessions.technician_actor(
        technician), "ended_by_technician")
    section = user.locator("#transcript-copy")
    await expect(section).to_be_visible()
    await section.get_by_label(words["email"]).fill("dana@example.com")
    await section.get_by_role("button", name=words["send"]).click()
    await expect(section.locator('[data-role="sent-code"]')).to_contain_text(words["sent"])
    (code_mail,) = await inbox(smtp, 1)
    code = re.search(r"\b(\d{6})\b", code_mail.get_body(("plain",)).get_content()).group(1)
    await section.locator('input[name="code"]').fill(f"{(int(code) + 1) % 1000000:06d}")
    await section.get_by_role("button", name=words["confirm"]).click()
    await expect(section.get_by_role("alert")).to_contain_text(words["wrong"])
    await section.locator('input[name="code"]').fill(code)
    if viewport == PHONE:
        await section.scroll_into_view_if_needed()
        await assert_fits(user)
    await screenshot(user, f"transcript-copy-{lang}")
    await section.get_by_role("button", name=words["confirm"]).click()
    await expect(section.locator('[data-role="copy-done"]')).to_contain_text(words["done"])
    copy_mail = (await inbox(smtp, 2))[1]
    assert smtp.inbox.recipients[1] == ["dana@example.com"]
    assert "Guest" in copy_mail.get_body(("plain",)).get_content() or \
        "Gast" in copy_mail.get_body(("plain",)).get_content()
    await user.reload()
    await expect(section.locator('[data-role="copy-done"]')).to_be_visible()
    await expect(user.locator("#copy-request")).to_be_hidden()
    people.assert_clean()


async def test_an_admin_sets_the_company_s_addresses(live: LiveBroker,
                                                     people: People) -> None:
    await live.broker.technicians.add("root@example.com", "Root", PASSWORD, is_admin=True)
    page = await people.page(viewport=DESKTOP, locale="de")
    await log_in_as(page, live, "root@example.com", "de")
    await page.goto(live.url("/admin"))
    form = page.locator('#transcript-mail-admin form[data-path="/api/v1/transcript-mail"]')
    await form.locator('input[name="enabled"]').check()
    await form.locator("textarea").fill("desk@example.com\nnot an address")
    await form.get_by_role("button").click()
    await expect(form.get_by_role("alert")).to_be_visible()  # refused, nothing stored
    await form.locator("textarea").fill("desk@example.com, Lead@Example.com")
    await form.locator('select[name="language"]').select_option("de")
    await form.locator('input[name="time_zone"]').fill("Europe/Berlin")
    await form.get_by_role("button").click()
    await expect(form.locator('[data-role="status"]')).to_have_text("Gespeichert.")
    await expect(form.locator("textarea")).to_have_value("desk@example.com\nLead@example.com")
    await page.locator("#transcript-mail-admin").screenshot(
        path=str(SCREENSHOTS / "transcript-mail-admin-de.png"), animations="disabled",
        caret="hide")
    level = await live.broker.transcript_mail.level(COMPANY)
    assert (level.enabled, level.addresses, level.language, level.time_zone) == (
        True, ("desk@example.com", "Lead@example.com"), "de", "Europe/Berlin")
    people.assert_clean()
