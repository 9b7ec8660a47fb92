"""Helpers for the browser tests: a broker on a real loopback port, Chromium, screenshots.

The broker listens on a socket bound before the app is built, so its port (and with it
the join links in `public_url`) is known up front and no other process can take it.
Chromium is Debian's `/usr/bin/chromium`; browsers are never downloaded.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from broker.clock import Clock
from broker.core import Broker
from broker.sessions import Actor
from broker.settings import Settings
from broker.technicians import Technician
from web import create_app
from web.state import get_broker

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
PASSWORD = "correct horse battery"
KEY_PATTERN = re.compile(r"^\d{3} \d{3} \d{3}$")
# Each action and assertion of a page waits this long at most (a passing test rarely waits
# at all). 5 s was too short on a loaded CI machine: a click whose navigation went through
# the Node OIDC provider, and a file chooser, each took longer once.
TIMEOUT_MS = 10_000


def require_chromium() -> None:
    """Skip without Chromium or Playwright, except on CI, where a missing browser fails."""
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            reason = "playwright is not installed (pip install -e '.[test]')"
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests must run on CI: {reason}")
    pytest.skip(reason)


@dataclasses.dataclass
class LiveBroker:
    app: web.Application
    base_url: str

    @property
    def broker(self) -> Broker:
        return get_broker(self.app)

    def url(self, path: str) -> str:
        return self.base_url + path


@asynccontextmanager
async def live_broker(data_dir: Path, *, clock: Clock | None = None, host: str = "127.0.0.1",
                      **overrides: Any) -> AsyncIterator[LiveBroker]:
    """`host`: the name the pages are opened at (passkeys need a domain name such as
    localhost; the broker listens on 127.0.0.1 either way)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base_url = f"http://{host}:{port}"
    settings = Settings(data_dir=data_dir, port=port, public_url=base_url, **overrides)
    app = create_app(settings, clock=clock)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2)
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
        yield LiveBroker(app, base_url)
    finally:
        await runner.cleanup()
        sock.close()


async def screenshot(page: Any, name: str, *, full_page: bool = False) -> Path:
    """Save `screenshots/<name>.png` (gitignored) for a human to look at."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page, animations="disabled",
                          caret="hide")
    return path


class People:
    """Browser contexts for the people in a test; each is closed at the end, whatever happens."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.contexts: list[Any] = []
        self.problems: list[str] = []

    async def page(self, **options: Any) -> Any:
        options.setdefault("viewport", {"width": 1280, "height": 800})
        options.setdefault("locale", "en-US")
        context = await self.browser.new_context(**options)
        self.contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        return await self._watched(await context.new_page())

    async def another_tab(self, page: Any) -> Any:
        """A new tab of the same browser as `page`: its cookies, a sessionStorage of its own."""
        return await self._watched(await page.context.new_page())

    async def _watched(self, page: Any) -> Any:
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("console", self._console)
        return page

    def _console(self, message: Any) -> None:
        # Error statuses of pages we open on purpose (409 for a used key) are expected.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.problems.append(f"console: {message.text}")

    def assert_clean(self) -> None:
        """No script errors and no Content-Security-Policy violations on any page."""
        assert self.problems == [], self.problems

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


@pytest.fixture
async def people() -> AsyncIterator[People]:
    """Headless Chromium, one context per person."""
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                   args=LAUNCH_ARGS)
        people = People(browser)
        try:
            yield people
        finally:
            try:
                await people.close()
            finally:
                await browser.close()


def expect(target: Any) -> Any:
    from playwright.async_api import expect as playwright_expect

    playwright_expect.set_options(timeout=TIMEOUT_MS)
    return playwright_expect(target)


async def add_technician(live: LiveBroker, name: str, email: str = "alice@example.com",
                         ) -> Technician:
    return await live.broker.technicians.add(email, name, PASSWORD)


async def log_in(page: Any, live: LiveBroker, email: str, *, shot: str | None = None,
                 empty: bool = True) -> None:
    """Log in through the login page; with `empty`, wait for the (empty) Waiting list."""
    await page.goto(live.url("/login"))
    await expect(page.get_by_role("heading", name="Technician login")).to_be_visible()
    if shot:
        await screenshot(page, shot)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(live.url("/dashboard"))
    if empty:
        await expect(page.locator("#list-waiting")).to_contain_text("None")


async def start_session(page: Any) -> tuple[str, Any]:
    """Click "Start session"; returns the new session's id and its pane."""
    tabs = page.locator("#tabs .tab")
    before = await tabs.count()
    await page.get_by_role("button", name="Start session").click()
    await expect(tabs).to_have_count(before + 1)
    session_id = await tabs.nth(before).get_attribute("data-session-id")
    assert session_id
    pane = page.locator(f'.pane[data-session-id="{session_id}"]')
    await expect(pane).to_be_visible()
    return session_id, pane


async def say(composer_area: Any, text: str) -> None:
    """Type into a chat box and press Enter, like a person."""
    await composer_area.fill(text)
    await composer_area.press("Enter")
    await expect(composer_area).to_have_value("")


async def confirm(page: Any, button: str) -> None:
    """Answer the dashboard's question (End session, Revoke key) with its button."""
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name=button, exact=True).click()
    await expect(dialog).to_be_hidden()


def message(messages: Any, text: str) -> Any:
    return messages.locator(".msg .text", has_text=text)


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveBroker]:
    """A broker on a loopback port for one browser test (Chromium checked first)."""
    require_chromium()
    # A roomy chat allowance: some tests write dozens of lines at once through the API.
    async with live_broker(tmp_path / "data", chat_burst=100) as broker:
        yield broker


Console = Callable[..., Awaitable[Any]]


@pytest.fixture
def console(live: LiveBroker, people: People) -> Console:
    """Opens the dashboard of a technician added before, logged in from a browser of
    their own: `dash = await console("alice@example.com")`; page options (viewport,
    locale) as for `People.page`; `empty=False` for one whose Waiting list is not."""
    async def open_dashboard(email: str, *, empty: bool = True, **page_options: Any) -> Any:
        page = await people.page(**page_options)
        await log_in(page, live, email, empty=empty)
        return page
    return open_dashboard


async def joined_by(live: LiveBroker, pane: Any, name: str | None, *,
                    wait: bool = True) -> Actor:
    """The end user joins with the key the pane shows, through the API (these tests are
    about the dashboard); returns their actor, to write as them. With `wait`, until the
    pane says they are connected."""
    key = await pane.locator('[data-role="key"]').inner_text()
    actor = (await live.broker.sessions.redeem(code=key, token=None, name=name)).actor
    if wait:
        await expect(pane.locator('[data-role="state"]')).to_contain_text("Connected with")
    return actor
