"""In Chromium: when the technician's login ends elsewhere (logged out in another tab, the
account disabled by an admin through the API), the dashboard says why, in the page's
language, and shows nothing as live any more (web/signouts.py closes its sockets)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from .browser_support import (
    LiveBroker,
    People,
    add_technician,
    expect,
    screenshot,
    start_session,
)
from .browser_support import live as live  # noqa: F401 - a fixture
from .browser_support import people as people  # noqa: F401 - a fixture
from .pages_support import assert_fits, log_in_as

pytestmark = pytest.mark.browser


async def joined(live: LiveBroker, pane: Any, name: str, connected: str) -> None:
    key = await pane.locator('[data-role="key"]').inner_text()
    await live.broker.sessions.redeem(code=key, token=None, name=name)
    await expect(pane.locator('[data-role="state"]')).to_have_text(connected + " " + name)


async def shots(page: Any, name: str) -> None:
    for width, height in ((1366, 850), (390, 844)):
        await page.set_viewport_size({"width": width, "height": height})
        await assert_fits(page)
        await screenshot(page, f"{name}-{width}")


async def test_logging_out_in_another_tab_shows_why_in_this_one(
        live: LiveBroker, people: People) -> None:
    await add_technician(live, "Alice Example")
    page = await people.page()
    await log_in_as(page, live, "alice@example.com")
    _, pane = await start_session(page)
    await joined(live, pane, "Dana", "Connected with")

    other = await people.another_tab(page)
    await other.goto(live.url("/dashboard"))
    await other.locator("#account summary").click()
    await other.get_by_role("button", name="Log out").click()
    await expect(other).to_have_url(live.url("/login"))

    banner = page.locator("#signed-out")
    await expect(banner).to_contain_text("You were logged out.")
    await expect(banner.get_by_role("link", name="Log in again")).to_have_attribute(
        "href", "/login")
    await expect(pane.locator('[data-role="notice"]')).to_have_text("You were logged out.")
    await expect(pane.locator('[data-role="state"]')).to_have_text("You were logged out.")
    await expect(page.locator("#tabs .tab")).to_have_attribute("data-state", "signed-out")
    await expect(pane.locator("textarea")).to_be_disabled()
    await expect(page.get_by_role("button", name="Start session")).to_be_disabled()
    await shots(page, "signed-out-en")
    people.assert_clean()


async def test_an_account_disabled_through_the_api_says_so_in_german(
        live: LiveBroker, people: People) -> None:
    alice = await add_technician(live, "Alice Example")
    root = await live.broker.technicians.add("root@example.com", "Root", "long enough pw",
                                             is_admin=True)
    token = await live.broker.technicians.create_token(root.id)
    page = await people.page(locale="de-DE")
    await log_in_as(page, live, "alice@example.com", lang="de")
    await page.get_by_role("button", name="Sitzung starten").click()
    pane = page.locator(".pane").first
    await expect(pane).to_be_visible()
    await joined(live, pane, "Dana", "Verbunden mit")

    async with aiohttp.ClientSession() as http, http.patch(
            live.url(f"/api/v1/technicians/{alice.id}"), json={"disabled": True},
            headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200, await response.text()

    disabled = "Ihr Konto wurde deaktiviert. Wenden Sie sich an Ihre Administration."
    await expect(page.locator("#signed-out")).to_contain_text(disabled)
    await expect(page.locator("#signed-out").get_by_role("link")).to_have_text(
        "Wieder anmelden")
    await expect(pane.locator('[data-role="notice"]')).to_have_text(disabled)
    await expect(pane.locator('[data-role="state"]')).not_to_contain_text("Verbunden")
    await shots(page, "signed-out-de")
    people.assert_clean()
