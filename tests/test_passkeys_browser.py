"""Passkeys in real Chromium with the DevTools protocol's virtual authenticators
(`WebAuthn.addVirtualAuthenticator`): a technician adds two named passkeys (the first
brings the recovery codes), removes one, uses the other as the second step after the
password, and signs in with it alone. The pages open at localhost: WebAuthn takes no
IP address as the relying party."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from broker.clock import FakeClock

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
from .pages_support import DESKTOP, PHONE, assert_fits

pytestmark = pytest.mark.browser

AUTHENTICATOR = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                 "hasUserVerification": True, "isUserVerified": True,
                 "automaticPresenceSimulation": True}


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveBroker]:
    require_chromium()
    async with live_broker(tmp_path / "data", clock=FakeClock(), host="localhost") as broker:
        yield broker


async def _password(page: Any, live: LiveBroker, email: str) -> None:
    await page.goto(live.url("/login"))
    await page.locator('input[name="email"]').fill(email)
    await page.locator('input[name="password"]').fill(PASSWORD)
    await page.locator('form[action="/login"] button[type="submit"]').click()


async def _log_out(page: Any) -> None:
    await page.locator("#account > summary").click()
    await page.locator('form[action="/logout"] button').click()
    await expect(page.locator('input[name="email"]')).to_be_visible()


async def _add_passkey(page: Any, name: str) -> None:
    await page.locator('#passkey-add input[name="name"]').fill(name)
    await page.locator('#passkey-add button[type="submit"]').click()


async def _shot(page: Any, name: str, lang: str) -> None:
    for size, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(viewport)
        await assert_fits(page)
        await screenshot(page, f"passkeys-{name}-{lang}-{size}", full_page=True)


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_passkeys_from_registration_to_passwordless_sign_in(
        live: LiveBroker, people: People, lang: str) -> None:
    await live.broker.technicians.add("maria@example.com", "Maria Weber", PASSWORD)
    page = await people.page(viewport=DESKTOP, locale=lang)
    devtools = await page.context.new_cdp_session(page)
    await devtools.send("WebAuthn.enable")
    laptop = await devtools.send("WebAuthn.addVirtualAuthenticator",
                                 {"options": AUTHENTICATOR})

    await _password(page, live, "maria@example.com")
    await expect(page).to_have_url(live.url("/dashboard"))
    await page.goto(live.url("/account/security"))
    await _add_passkey(page, "Work laptop")
    # The first factor brings the ten recovery codes, shown once.
    await expect(page.locator("#recovery-codes li")).to_have_count(10)
    await page.locator("#continue").click()
    await expect(page.locator("#passkeys li")).to_have_count(1)

    # A second one, on another authenticator (a security key).
    await devtools.send("WebAuthn.removeVirtualAuthenticator",
                        {"authenticatorId": laptop["authenticatorId"]})
    await devtools.send("WebAuthn.addVirtualAuthenticator", {"options": {
        **AUTHENTICATOR, "transport": "usb"}})
    await _add_passkey(page, "Security key")
    await expect(page.locator("#continue")).to_be_visible()  # no new codes this time
    await page.locator("#continue").click()
    passkeys = page.locator("#passkeys li")
    await expect(passkeys).to_have_count(2)
    await expect(passkeys.nth(0)).to_contain_text("Work laptop")
    await expect(passkeys.nth(1)).to_contain_text("Security key")
    await _shot(page, "security", lang)
    # The laptop is gone: its passkey is removed.
    await passkeys.nth(0).locator("button").click()
    await expect(passkeys).to_have_count(1)
    await expect(passkeys.nth(0)).to_contain_text("Security key")

    # The next login asks for the passkey after the password.
    await page.goto(live.url("/dashboard"))
    await _log_out(page)
    await _password(page, live, "maria@example.com")
    await expect(page).to_have_url(live.url("/login/factor"))
    await _shot(page, "second-step", lang)
    await page.locator("#passkey-login").click()
    await expect(page).to_have_url(live.url("/dashboard"))

    # And alone: no email, no password.
    await _log_out(page)
    await _shot(page, "login", lang)
    await page.locator("#passkey-login").click()
    await expect(page).to_have_url(live.url("/dashboard"))
    status = await live.broker.factors.status(
        await live.broker.technicians.by_email("maria@example.com"))
    assert [p.name for p in status.passkeys] == ["Security key"]
    assert status.passkeys[0].last_used_at is not None
    people.assert_clean()
