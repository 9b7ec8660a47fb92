"""Second factors in real Chromium: setting up an authenticator app from the QR code's
page (the test computes the codes from the secret the page shows, at the broker's fake
clock), the recovery codes shown once, the login's second step with a right, a replayed
and a recovery code, and the policy leading a technician through enrolment first. Every
page in English and German, on a desktop and a phone, with screenshots."""

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
from .factor_support import code_at
from .pages_support import DESKTOP, PHONE, assert_fits

pytestmark = pytest.mark.browser

TEXT = {
    "en": {"required": "Your administrator requires a second factor",
           "wrong": "This code is not right, or it was used already",
           "heading": "Confirm it is you", "codes": "Your recovery codes"},
    "de": {"required": "Ihr Administrator verlangt einen zweiten Faktor",
           "wrong": "Dieser Code stimmt nicht oder wurde schon verwendet",
           "heading": "Bestätigen Sie, dass Sie es sind",
           "codes": "Ihre Wiederherstellungscodes"},
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def live(tmp_path: Path, clock: FakeClock) -> AsyncIterator[LiveBroker]:
    require_chromium()
    async with live_broker(tmp_path / "data", clock=clock) as broker:
        yield broker


async def _password(page: Any, live: LiveBroker, email: str) -> None:
    await page.goto(live.url("/login"))
    await page.locator('input[name="email"]').fill(email)
    await page.locator('input[name="password"]').fill(PASSWORD)
    await page.locator('form[action="/login"] button[type="submit"]').click()


async def _log_out(page: Any) -> None:
    menu = page.locator("#account > summary")
    if await menu.count():  # the dashboard's account menu
        await menu.click()
    await page.locator('form[action="/logout"] button').first.click()
    await expect(page.locator('input[name="email"]')).to_be_visible()


async def _shot(page: Any, name: str, lang: str) -> None:
    """The page as it is, on a desktop and on a phone: it fits both."""
    for size, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(viewport)
        await assert_fits(page)
        await screenshot(page, f"factors-{name}-{lang}-{size}", full_page=True)


@pytest.mark.parametrize("lang, required", [("en", False), ("de", True)])
async def test_authenticator_app_from_enrolment_to_login(
        live: LiveBroker, people: People, clock: FakeClock, lang: str,
        required: bool) -> None:
    text = TEXT[lang]
    viewport = DESKTOP
    await live.broker.technicians.add("root@example.com", "Root", PASSWORD, is_admin=True)
    await live.broker.technicians.add("maria@example.com", "Maria Weber", PASSWORD)
    if required:  # an admin requires a second factor of everyone, on the admin page
        admin = await people.page(viewport=viewport, locale=lang)
        await _password(admin, live, "root@example.com")
        await expect(admin).to_have_url(live.url("/dashboard"))
        await admin.goto(live.url("/admin"))
        policy = admin.locator("#factor-policy")
        await policy.locator("select").select_option("everyone")
        await policy.locator('button[type="submit"]').click()
        await expect(policy.locator('[data-role="saved"]')).not_to_be_empty()
        await admin.set_viewport_size(PHONE)
        await policy.scroll_into_view_if_needed()
        await screenshot(admin, f"factors-admin-{lang}-phone")
        assert (await live.broker.factors.requirement()).value == "everyone"

    page = await people.page(viewport=viewport, locale=lang)
    await _password(page, live, "maria@example.com")
    if required:  # led to enrolment; nothing else is reachable
        await expect(page).to_have_url(live.url("/account/security"))
        await expect(page.locator(".notice")).to_contain_text(text["required"])
        await _shot(page, "required", lang)
        await page.goto(live.url("/dashboard"))
        await expect(page).to_have_url(live.url("/login"))
        await page.go_back()
        await page.goto(live.url("/account/security"))
    else:
        await expect(page).to_have_url(live.url("/dashboard"))
        await page.locator("#account > summary").click()
        await page.locator('a[href="/account/security"]').click()
        await expect(page).to_have_url(live.url("/account/security"))
        await _shot(page, "security", lang)

    await page.locator("#totp-new").click()
    await expect(page).to_have_url(live.url("/account/totp"))
    await expect(page.locator(".qr svg")).to_be_visible()
    await _shot(page, "totp", lang)
    secret = (await page.locator("#totp-secret").inner_text()).replace(" ", "")
    await page.locator('input[name="code"]').fill("123456" if code_at(
        secret, clock) != "123456" else "654321")
    await page.locator('form[action="/account/totp"] button[type="submit"]').click()
    await expect(page.locator(".alert")).to_be_visible()  # a wrong first code
    code = code_at(secret, clock)
    await page.locator('input[name="code"]').fill(code)
    await page.locator('form[action="/account/totp"] button[type="submit"]').click()
    await expect(page.get_by_role("heading", name=text["codes"])).to_be_visible()
    recovery = await page.locator("#recovery-codes code").all_inner_texts()
    assert len(recovery) == 10 and len(set(recovery)) == 10
    await _shot(page, "recovery", lang)
    await page.locator("#continue").click()
    await expect(page).to_have_url(live.url("/dashboard" if required
                                            else "/account/security"))
    if not required:
        await expect(page.locator(".badge.ok")).to_be_visible()
        await _shot(page, "security-set-up", lang)

    # The next login asks for the code; the one just used does not work again.
    await page.goto(live.url("/dashboard"))
    await _log_out(page)
    await _password(page, live, "maria@example.com")
    await expect(page).to_have_url(live.url("/login/factor"))
    await expect(page.get_by_role("heading", name=text["heading"])).to_be_visible()
    await _shot(page, "login", lang)
    await page.locator('input[name="code"]').fill(code)
    await page.locator('form[action="/login/factor"] button[type="submit"]').click()
    await expect(page.locator(".alert")).to_contain_text(text["wrong"])
    await _shot(page, "login-replayed", lang)
    clock.advance(30)
    await page.locator('input[name="code"]').fill(code_at(secret, clock))
    await page.locator('form[action="/login/factor"] button[type="submit"]').click()
    await expect(page).to_have_url(live.url("/dashboard"))
    await page.locator("#account > summary").click()
    await expect(page.locator('a[href="/account/security"]')).to_be_visible()
    await _shot(page, "dashboard", lang)
    await page.locator("#account > summary").click()

    # A recovery code instead, once.
    await _log_out(page)
    await _password(page, live, "maria@example.com")
    await page.locator('input[name="code"]').fill(recovery[3])
    await page.locator('form[action="/login/factor"] button[type="submit"]').click()
    await expect(page).to_have_url(live.url("/dashboard"))
    status = await live.broker.factors.status(
        await live.broker.technicians.by_email("maria@example.com"))
    assert status.recovery_codes_left == 9
    people.assert_clean()
