"""In Chromium: an admin manages webhooks on the admin page, in English and German, on a
desktop and a phone: adds one (the secret shown once, copied), sees its deliveries to a
real receiver on loopback, sends a test event, edits its events, disables, rotates and
deletes it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .browser_support import People, expect, live_broker, screenshot
from .browser_support import people as people  # noqa: F401 - a fixture
from .pages_support import DESKTOP, PHONE, add_people, assert_fits, log_in_as
from .webhook_support import Receiver

pytestmark = pytest.mark.browser
WORDS = {
    "en": {"add": "Add webhook", "deliveries": "Deliveries", "test": "Send test event",
           "edit": "Edit events", "save": "Save", "disable": "Disable", "enable": "Enable",
           "rotate": "Rotate secret", "delete": "Delete", "done": "Done", "copy": "Copy",
           "copied": "Copied", "none": "No webhooks yet.", "disabled": "disabled",
           "delivered": "delivered"},
    "de": {"add": "Webhook hinzufügen", "deliveries": "Zustellungen",
           "test": "Testereignis senden", "edit": "Ereignisse ändern", "save": "Speichern",
           "disable": "Deaktivieren", "enable": "Aktivieren", "rotate": "Geheimnis erneuern",
           "delete": "Löschen", "done": "Fertig", "copy": "Kopieren", "copied": "Kopiert",
           "none": "Noch keine Webhooks.", "disabled": "deaktiviert",
           "delivered": "zugestellt"},
}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = await Receiver().start()
    yield found
    await found.stop()


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_an_admin_manages_a_webhook(tmp_path: Path, people: People, receiver: Receiver,
                                          lang: str) -> None:
    words = WORDS[lang]
    async with live_broker(tmp_path / "data", webhook_allow_private_targets=True,
                           webhook_http_hosts="127.0.0.1", webhook_poll_seconds=0.05) as live:
        admin, _, _ = await add_people(live.broker)
        page = await people.page(viewport=DESKTOP, locale=lang)
        await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        await log_in_as(page, live, "admin@example.com", lang)
        await page.goto(live.url("/admin"))
        section = page.locator("#webhooks")
        await expect(section.locator("#webhook-list")).to_contain_text(words["none"])
        form = section.locator("#new-webhook")
        await form.locator('input[name="url"]').fill(receiver.url)
        await form.locator('input[name="description"]').fill("Zendesk")
        await form.get_by_label("session.joined").check()
        await form.get_by_role("button", name=words["add"]).click()
        secret = section.locator('#webhook-secret [data-role="secret"]')
        await expect(secret).to_have_text(re.compile("^whsec_"))
        receiver.secrets.append(await secret.inner_text())
        await section.get_by_role("button", name=words["copy"]).click()
        await expect(section.get_by_role("button", name=words["copied"])).to_be_visible()
        assert await page.evaluate("navigator.clipboard.readText()") == receiver.secrets[0]
        await section.get_by_role("button", name=words["done"]).click()
        await expect(secret).to_be_hidden()
        row = section.locator("#webhook-list tr").first
        await expect(row).to_contain_text("Zendesk")
        await expect(row).to_contain_text("session.created, session.ended, session.joined")

        await live.broker.sessions.start(admin)
        await receiver.wait_for(lambda got: len(got) == 1)
        await row.get_by_role("button", name=words["test"]).click()
        log = section.locator("#webhook-log")
        await expect(log).to_contain_text("webhook.test")
        await expect(log.locator("tbody tr").nth(1)).to_contain_text("session.created")
        await expect(log.locator("tbody tr").nth(1)).to_contain_text("200")
        await receiver.wait_for(lambda got: len(got) == 2)
        # The open log follows the test event until it is delivered.
        await expect(log.locator("tbody tr").first).to_contain_text(words["delivered"])
        for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            await page.set_viewport_size(viewport)
            await section.scroll_into_view_if_needed()
            await assert_fits(page)
            await screenshot(page, f"admin-webhooks-{lang}-{size}", full_page=True)
        await page.set_viewport_size(DESKTOP)

        await row.get_by_role("button", name=words["edit"]).click()
        editor = section.locator(".webhook-editor")
        await editor.get_by_label("session.created").uncheck()
        await editor.get_by_role("button", name=words["save"]).click()
        await expect(row).to_contain_text("session.ended, session.joined")
        await row.get_by_role("button", name=words["disable"]).click()
        await expect(row).to_contain_text(words["disabled"])
        await row.get_by_role("button", name=words["enable"]).click()
        await expect(row.get_by_role("button", name=words["disable"])).to_be_visible()
        page.once("dialog", lambda dialog: dialog.accept())
        await row.get_by_role("button", name=words["rotate"]).click()
        await expect(secret).to_have_text(re.compile("^whsec_"))
        assert await secret.inner_text() != receiver.secrets[0]
        await section.get_by_role("button", name=words["done"]).click()
        page.once("dialog", lambda dialog: dialog.accept())
        await row.get_by_role("button", name=words["delete"]).click()
        await expect(section.locator("#webhook-list")).to_contain_text(words["none"])
        assert await live.broker.webhooks.endpoints.all() == []
        assert not receiver.unverified
        people.assert_clean()
