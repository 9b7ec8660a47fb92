"""In Chromium, in English and German, on a desktop and a phone: a technician makes a
scoped API token on /tokens (shown once), which then reads sessions and nothing else, and
revokes it; an admin sees everybody's tokens on the admin page and revokes one."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest

from broker.technicians import Scope

from .browser_support import People, expect, live_broker, screenshot
from .browser_support import people as people  # noqa: F401 - a fixture
from .pages_support import DESKTOP, PHONE, add_people, assert_fits, log_in_as

pytestmark = pytest.mark.browser
WORDS = {
    "en": {"link": "API tokens", "create": "Create token", "done": "Done", "revoke": "Revoke",
           "none": "No API tokens.", "never": "never", "not_yet": "not yet"},
    "de": {"link": "API-Tokens", "create": "Token erstellen", "done": "Fertig",
           "revoke": "Widerrufen", "none": "Keine API-Tokens.", "never": "nie",
           "not_yet": "noch nie"},
}


async def _status(url: str, token: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(
            url, headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_tokens_in_the_browser(tmp_path: Path, people: People, lang: str) -> None:
    words = WORDS[lang]
    async with live_broker(tmp_path / "data") as live:
        _, maria, _ = await add_people(live.broker)
        page = await people.page(viewport=DESKTOP, locale=lang)
        await log_in_as(page, live, "maria@example.com", lang)
        await page.locator("#account summary").click()  # the account menu
        await page.get_by_role("link", name=words["link"]).click()
        await expect(page).to_have_url(live.url("/tokens"))
        section = page.locator("#tokens")
        await expect(section.locator("#token-list")).to_contain_text(words["none"])
        form = section.locator("#new-token")
        await form.locator('input[name="name"]').fill("Help desk")
        await form.locator('input[value="sessions:read"]').check()
        await form.locator('input[value="deliveries"]').check()
        await form.get_by_role("button", name=words["create"]).click()
        shown = section.locator('#token-secret [data-role="token"]')
        await expect(shown).to_have_text(re.compile("^sbt_"))
        token = await shown.inner_text()
        row = section.locator("#token-list tr").first
        await expect(row).to_contain_text("Help desk")
        await expect(row).to_contain_text("sessions:read deliveries")
        await expect(row).to_contain_text(words["not_yet"])
        assert await _status(live.url("/api/v1/sessions"), token) == 200
        assert await _status(live.url("/api/v1/webhooks"), token) == 403
        for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            await page.set_viewport_size(viewport)
            await assert_fits(page)
            await screenshot(page, f"tokens-{lang}-{size}", full_page=True)
        await page.set_viewport_size(DESKTOP)
        await section.get_by_role("button", name=words["done"]).click()
        await expect(shown).to_be_hidden()
        await page.reload()
        await expect(row).not_to_contain_text(words["not_yet"])  # used once, just now
        page.once("dialog", lambda dialog: dialog.accept())
        await row.get_by_role("button", name=words["revoke"]).click()
        await expect(section.locator("#token-list")).to_contain_text(words["none"])
        assert await _status(live.url("/api/v1/sessions"), token) == 401

        # The admin sees Maria's tokens among everybody's and revokes one.
        kept = (await live.broker.technicians.tokens.create(
            maria.id, frozenset({Scope.SESSIONS_WRITE}), name="Monitoring"))[1]
        admin_page = await people.page(viewport=DESKTOP, locale=lang)
        await log_in_as(admin_page, live, "admin@example.com", lang)
        await admin_page.goto(live.url("/admin"))
        listing = admin_page.locator("#tokens #token-list")
        await expect(listing).to_contain_text("Monitoring")
        await expect(listing).to_contain_text("Maria Weber")
        await expect(listing).to_contain_text(words["never"])
        for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            await admin_page.set_viewport_size(viewport)
            await admin_page.locator("#tokens").scroll_into_view_if_needed()
            await assert_fits(admin_page)
            await screenshot(admin_page, f"admin-tokens-{lang}-{size}")
        admin_page.once("dialog", lambda dialog: dialog.accept())
        await listing.locator("tr", has_text="Monitoring").get_by_role(
            "button", name=words["revoke"]).click()
        await expect(listing).to_contain_text(words["none"])
        assert await _status(live.url("/api/v1/sessions"), kept) == 401
        people.assert_clean()
