"""The technician's closing form in real Chromium, in English and German, on a desktop
window and a 390 px phone: after "End session" the pane asks for a category, resolved
and a ticket number; a form with nothing in it and a garbage ticket number are refused
in the page, a good one is saved; the transcript page shows it and changes it; the form
can be skipped; an admin keeps the categories on the admin page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from broker.sessions import SessionState

from .browser_support import (
    PASSWORD,
    LiveBroker,
    People,
    expect,
    live_broker,
    require_chromium,
    screenshot,
)
from .browser_support import people as people  # noqa: F401 - a fixture
from .pages_support import PHONE, assert_fits, log_in_as
from .test_pages_browser_enduser import until_state

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1366, "height": 850}
WORDS = {
    "en": {"title": "How did the session close?", "printer": "Printer",
           "empty": "Not saved: Fill in at least one field, or skip the form.",
           "ticket": "Not saved: A ticket number is one line of printable characters, at "
                     "most 64.",
           "saved": "Saved.", "summary": "Printer · Not resolved · INC-2041 (Recorded by Alice)",
           "closing": "Closing", "yes": "Yes", "no": "No"},
    "de": {"title": "Wie endete die Sitzung?", "printer": "Drucker",
           "empty": "Nicht gespeichert: Füllen Sie mindestens ein Feld aus, oder "
                    "überspringen Sie das Formular.",
           "ticket": "Nicht gespeichert: Eine Ticketnummer ist eine Zeile aus druckbaren "
                     "Zeichen, höchstens 64.",
           "saved": "Gespeichert.",
           "summary": "Drucker · Nicht gelöst · INC-2041 (erfasst von Alice)",
           "closing": "Abschluss", "yes": "Ja", "no": "Nein"},
}


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveBroker]:
    require_chromium()
    async with live_broker(tmp_path / "data") as broker:
        await broker.broker.closing.set_config({"categories": [
            {"label": {"en": "Printer", "de": "Drucker"}},
            {"label": {"en": "Network", "de": "Netzwerk"}}]})
        await broker.broker.technicians.add("alice@example.com", "Alice", PASSWORD)
        yield broker


async def ended_in_the_pane(live: LiveBroker, page: Any) -> tuple[str, Any]:
    """A session started on the dashboard, joined by Dana, ended with "End session"."""
    await page.locator("#start-session").click()
    pane = page.locator(".pane").last
    await expect(pane.locator('[data-role="key"]')).not_to_have_text("– – –")
    session_id = await pane.get_attribute("data-session-id")
    key = await pane.locator('[data-role="key"]').inner_text()
    await live.broker.sessions.redeem(code=key, token=None, name="Dana")
    await expect(pane.locator('[data-role="state"]')).to_have_attribute("data-state", "active")
    await pane.locator('[data-action="end"]').click()
    await page.locator('#confirm-dialog [data-action="confirm"]').click()
    await until_state(live, session_id, SessionState.ENDED)
    return session_id, pane


@pytest.mark.parametrize(("lang", "viewport"), [("en", DESKTOP), ("de", PHONE),
                                                 ("en", PHONE), ("de", DESKTOP)])
async def test_the_technician_closes_a_session(live: LiveBroker, people: People, lang: str,
                                               viewport: dict[str, int]) -> None:
    words = WORDS[lang]
    size = "phone" if viewport == PHONE else "desktop"
    page = await people.page(viewport=viewport, locale=lang)
    await log_in_as(page, live, "alice@example.com", lang)
    session_id, pane = await ended_in_the_pane(live, page)
    card = pane.locator('[data-role="closing"]')
    await expect(card.locator("h3")).to_have_text(words["title"])
    alert = card.get_by_role("alert")
    await card.locator('button[type="submit"]').click()
    await expect(alert).to_have_text(words["empty"])
    await card.locator('input[name="ticket"]').fill("INC\u202e2041")
    await card.locator('button[type="submit"]').click()
    await expect(alert).to_have_text(words["ticket"])
    await card.locator("select").select_option(label=words["printer"])
    await card.locator('input[name="resolved"][value="no"]').check()
    await card.locator('input[name="ticket"]').fill("INC-2041")
    await expect(alert).to_be_hidden()
    if viewport == PHONE:
        await assert_fits(page)
    await screenshot(page, f"closing-pane-{lang}-{size}")
    await card.locator('button[type="submit"]').click()
    await expect(card.get_by_role("status")).to_have_text(words["saved"])
    await expect(card.locator('[data-role="summary"]')).to_have_text(words["summary"])
    stored = await live.broker.closing.latest(session_id)
    assert stored is not None and stored.category is not None
    assert (stored.category.id, stored.resolved, stored.ticket) == ("printer", False, "INC-2041")
    await screenshot(page, f"closing-pane-saved-{lang}-{size}")

    # The transcript shows it at the end; the form there changes it.
    await page.goto(live.url(f"/sessions/{session_id}/transcript"))
    section = page.locator(".transcript-closing")
    await expect(section.locator("h2")).to_have_text(words["closing"])
    await expect(section).to_contain_text(words["printer"])
    await expect(section).to_contain_text("INC-2041")
    await expect(section.locator("dd").nth(1)).to_have_text(words["no"])
    form = page.locator("#closing-page")
    await expect(form.locator('[data-role="summary"]')).to_have_text(words["summary"])
    await form.locator('[data-action="change"]').click()
    await form.locator('input[name="resolved"][value="yes"]').check()
    await form.locator('button[type="submit"]').click()
    await expect(form.get_by_role("status")).to_have_text(words["saved"])  # after the reload
    await expect(section.locator("dd").nth(1)).to_have_text(words["yes"])
    if viewport == PHONE:
        await assert_fits(page)
    await screenshot(page, f"closing-transcript-{lang}-{size}", full_page=True)
    latest = await live.broker.closing.latest(session_id)
    assert latest is not None and latest.resolved is True
    people.assert_clean()


async def test_the_form_can_be_skipped(live: LiveBroker, people: People) -> None:
    page = await people.page(viewport=DESKTOP)
    await log_in_as(page, live, "alice@example.com")
    session_id, pane = await ended_in_the_pane(live, page)
    card = pane.locator('[data-role="closing"]')
    await expect(card).to_be_visible()
    await card.get_by_role("button", name="Skip").click()
    await expect(card).to_have_count(0)
    await page.reload()  # the tab comes back, the form does not
    await expect(page.locator(f'.pane[data-session-id="{session_id}"]')).to_be_visible()
    await expect(page.locator('[data-role="closing"]')).to_have_count(0)
    assert await live.broker.closing.latest(session_id) is None
    # A session nobody joined has nothing to close: its key withdrawn, no form.
    await page.locator("#start-session").click()
    unjoined = page.locator(".pane").last
    await expect(unjoined.locator('[data-role="key"]')).not_to_have_text("– – –")
    await unjoined.locator('[data-action="revoke"]').click()
    await page.locator('#confirm-dialog [data-action="confirm"]').click()
    await expect(unjoined.locator('[data-role="state"]')).to_have_attribute("data-state", "ended")
    await expect(unjoined.locator('[data-role="closing"]')).to_have_count(0)
    people.assert_clean()


@pytest.mark.parametrize(("lang", "viewport"), [("en", DESKTOP), ("de", PHONE),
                                                 ("en", PHONE), ("de", DESKTOP)])
async def test_an_admin_keeps_the_categories(live: LiveBroker, people: People, lang: str,
                                             viewport: dict[str, int]) -> None:
    await live.broker.technicians.add("root@example.com", "Root", PASSWORD, is_admin=True)
    page = await people.page(viewport=viewport, locale=lang)
    await log_in_as(page, live, "root@example.com", lang)
    await page.goto(live.url("/admin"))
    section = page.locator("#closing-admin")
    await expect(section.locator('tr[data-id="printer"] input[name="de"]')).to_have_value(
        "Drucker")
    await section.locator('tr[data-id="network"] [data-action="remove"]').click()
    await section.locator('[data-action="add"]').click()
    row = section.locator("tbody tr").last
    await row.locator('input[name="en"]').fill("Printer")  # the same name twice: refused
    await section.locator('button[type="submit"]').click()
    await expect(section.get_by_role("alert")).to_contain_text("same English name")
    await row.locator('input[name="en"]').fill("Accounts & passwords")
    await row.locator('input[name="de"]').fill("Konten und Passwörter")
    await section.locator('button[type="submit"]').click()
    await expect(section.locator("#closing-admin-status")).to_have_text(
        WORDS[lang]["saved"])
    await expect(section.get_by_role("alert")).to_be_hidden()
    size = "phone" if viewport == PHONE else "desktop"
    if viewport == PHONE:
        await assert_fits(page)
    await section.scroll_into_view_if_needed()
    await screenshot(page, f"closing-admin-{lang}-{size}")
    config = await live.broker.closing.config()
    assert [(c.id, c.name("de")) for c in config.categories] == [
        ("printer", "Drucker"), ("accounts-passwords", "Konten und Passwörter")]
    people.assert_clean()
