"""Single sign-on in Chromium against a real OpenID provider on loopback (the npm package
oidc-provider, tests/oidc_support.py): a first sign-in makes the technician, an admin by
their group and in the team named like another; and a wrong `state`, a replayed code, an
ID token for another audience and an expired one are each refused with a page that says
so, in English and German, nobody signed in. With passwords turned off the login form
refuses them, except a one-time password (the emergency path)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from broker.clock import FakeClock

from .browser_support import PASSWORD, People, expect, live_broker, screenshot
from .browser_support import people as people  # noqa: F401 - a fixture
from .oidc_support import CLIENT_SECRET, free_port, oidc_provider
from .pages_support import DESKTOP, PHONE, assert_fits

pytestmark = pytest.mark.browser
ACCOUNTS = {"maria@example.com": {"email": "maria@example.com", "email_verified": True,
                                  "name": "Maria Weber", "groups": ["support-admins", "Tier 2"]},
            "eve@example.com": {"email": "eve@example.com", "email_verified": True,
                                "groups": []}}
SSO_BUTTON = {"en": "Sign in with single sign-on", "de": "Mit Single Sign-on anmelden"}
REFUSED = {"en": "Single sign-on did not work", "de": "Single Sign-on hat nicht geklappt"}


def _settings(port: int, **more: Any) -> dict[str, Any]:
    return {"oidc_issuer": f"http://127.0.0.1:{port}", "oidc_client_id": "broker",
            "oidc_client_secret": CLIENT_SECRET, "oidc_admin_group": "support-admins",
            "oidc_team_groups": True, "oidc_create_technicians": True, **more}


async def _at_provider(page: Any, login: str) -> None:
    """Sign in on the provider's own (development) sign-in page."""
    await page.locator('input[name="login"]').fill(login)
    await page.locator('input[name="password"]').fill("anything")
    await page.locator('button[type="submit"]').click()


async def _sign_in(page: Any, base: str, login: str, lang: str = "en") -> None:
    await page.goto(f"{base}/login?lang={lang}")
    await page.get_by_role("link", name=SSO_BUTTON[lang]).click()
    await _at_provider(page, login)


async def _callbacks(page: Any, base: str) -> list[str]:
    """The callback addresses the provider sends this page to, as they go by."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url)
            if request.url.startswith(f"{base}/login/sso/callback?") else None)
    return seen


async def _refused(page: Any, code: str, lang: str) -> None:
    await expect(page.locator(f'[data-error-code="{code}"]')).to_be_visible()
    await expect(page.locator("h1")).to_contain_text(REFUSED[lang])


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_first_sign_in_makes_the_technician(tmp_path: Path, people: People,
                                                  lang: str) -> None:
    port = free_port()
    async with live_broker(tmp_path / "data", **_settings(port)) as live:
        team = await live.broker.teams.create("Tier 2")
        async with oidc_provider(port, live.url("/login/sso/callback"), ACCOUNTS):
            page = await people.page(viewport=DESKTOP, locale=lang)
            await page.goto(live.url(f"/login?lang={lang}"))
            for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                await page.set_viewport_size(viewport)
                await assert_fits(page)
                await screenshot(page, f"login-sso-{lang}-{size}")
            await page.set_viewport_size(DESKTOP)
            await _sign_in(page, live.base_url, "maria@example.com", lang)
            await expect(page).to_have_url(live.url("/dashboard"))
            maria = await live.broker.technicians.by_email("maria@example.com")
            assert maria.display_name == "Maria Weber" and maria.is_admin
            assert maria.id in (await live.broker.teams.by_name("Tier 2")).member_ids
            assert team.id
            # Another person of the provider without the groups: no admin, no team.
            other = await people.page(viewport=DESKTOP, locale=lang)
            await _sign_in(other, live.base_url, "eve@example.com", lang)
            await expect(other).to_have_url(live.url("/dashboard"))
            eve = await live.broker.technicians.by_email("eve@example.com")
            assert not eve.is_admin
            for open_page in (page, other):  # their dashboards' sockets end before the broker
                await open_page.goto("about:blank")
    people.assert_clean()


async def test_wrong_state_and_replayed_code_are_refused(tmp_path: Path,
                                                         people: People) -> None:
    port = free_port()
    async with live_broker(tmp_path / "data", **_settings(port)) as live, \
            oidc_provider(port, live.url("/login/sso/callback"), ACCOUNTS) as provider:
        # A callback this browser did not start (the state belongs to another browser).
        first = await people.page(viewport=DESKTOP, locale="en")
        stolen = await _callbacks(first, live.base_url)
        await _sign_in(first, live.base_url, "maria@example.com")
        await expect(first).to_have_url(live.url("/dashboard"))
        attacker = await people.page(viewport=DESKTOP, locale="de")
        await attacker.goto(live.url("/login?lang=de"))
        await attacker.goto(stolen[0])
        await _refused(attacker, "sso_state", "de")
        await screenshot(attacker, "sso-refused-de-desktop")
        await attacker.set_viewport_size(PHONE)
        await assert_fits(attacker)
        await screenshot(attacker, "sso-refused-de-phone")
        await attacker.goto(live.url("/dashboard"))
        await expect(attacker).to_have_url(live.url("/login"))
        # The same callback again in the browser that used it: its state is spent.
        await first.goto(stolen[0])  # (its dashboard's socket ends here, too)
        await _refused(first, "sso_state", "en")
        # A browser in the middle of its own sign-in, sent another's callback (a login
        # forced on it): the state differs.
        replay = await people.page(viewport=DESKTOP, locale="en")
        asked: list[str] = []
        replay.on("request", lambda request: asked.append(request.url)
                  if request.url.startswith(f"{provider.issuer}/auth?") else None)

        async def started() -> str:
            await replay.goto(live.url("/login"))
            await replay.get_by_role("link", name=SSO_BUTTON["en"]).click()
            await expect(replay.locator('input[name="login"]')).to_be_visible()
            return str(URL(asked[-1]).query["state"])

        await started()
        await replay.goto(stolen[0])
        await _refused(replay, "sso_state", "en")
        # The used code with a fresh sign-in's state: the provider refuses the code.
        state = await started()
        used = URL(stolen[0])
        await replay.goto(str(used.with_query({**used.query, "state": state})))
        await _refused(replay, "sso_code", "en")
        await screenshot(replay, "sso-refused-en-desktop")
        await replay.goto(live.url("/dashboard"))
        await expect(replay).to_have_url(live.url("/login"))
    people.assert_clean()


async def test_wrong_audience_and_expired_id_tokens_are_refused(tmp_path: Path,
                                                                people: People) -> None:
    port = free_port()
    async with live_broker(tmp_path / "one", **_settings(port)) as live, \
            oidc_provider(port, live.url("/login/sso/callback"), ACCOUNTS) as provider:
        await provider.set_mode("wrong_audience")
        page = await people.page(viewport=DESKTOP, locale="en")
        await _sign_in(page, live.base_url, "maria@example.com")
        await _refused(page, "sso_id_token", "en")
        assert await live.broker.technicians.count() == 0
    # The broker's clock two hours ahead: the provider's hour-long ID token has expired.
    port = free_port()
    later = FakeClock(time.time() + 7200)
    async with live_broker(tmp_path / "two", clock=later, **_settings(port)) as live, \
            oidc_provider(port, live.url("/login/sso/callback"), ACCOUNTS):
        page = await people.page(viewport=DESKTOP, locale="en")
        await _sign_in(page, live.base_url, "maria@example.com")
        await _refused(page, "sso_id_token", "en")
        assert await live.broker.technicians.count() == 0
    people.assert_clean()


async def test_passwords_off_but_one_time_password_and_unknown_people(
        tmp_path: Path, people: People) -> None:
    port = free_port()
    settings = _settings(port, password_login=False, oidc_create_technicians=False)
    async with live_broker(tmp_path / "data", **settings) as live, \
            oidc_provider(port, live.url("/login/sso/callback"), ACCOUNTS):
        await live.broker.technicians.add("root@example.com", "Root", PASSWORD, is_admin=True)
        page = await people.page(viewport=DESKTOP, locale="en")
        await page.goto(live.url("/login"))
        await expect(page.locator('input[name="password"]')).to_have_count(0)
        # The password form on purpose (?password=1): a password is refused...
        await page.goto(live.url("/login?password=1"))
        await page.locator('input[name="email"]').fill("root@example.com")
        await page.locator('input[name="password"]').fill(PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await expect(page.locator(".alert")).to_contain_text("Passwords are turned off")
        # ...a one-time password (supportbroker technician reset-password) works once.
        root = await live.broker.technicians.by_email("root@example.com")
        once = await live.broker.technicians.set_one_time_password(root.id)
        await page.locator('input[name="password"]').fill(once)
        await page.get_by_role("button", name="Log in").click()
        await expect(page).to_have_url(re.compile(r"/password$"))
        # Nobody has Maria's email, and sign-ins make no technicians here.
        await _sign_in(page, live.base_url, "maria@example.com")
        await expect(page.locator('[data-error-code="sso_unknown"]')).to_be_visible()
    people.assert_clean()
