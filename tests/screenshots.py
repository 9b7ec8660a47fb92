"""Screenshots for the documentation: a broker with demo data on a loopback port, and
headless Chromium photographing the dashboard, a transcript, the admin page, "My
sessions", the reports, the supervisor board and watching a session, in English and
German, on a desktop (1366x850) and a phone (390x844).

    python -m tests.screenshots             # refresh docs/screenshots/*.png
    python -m tests.screenshots --all out/  # also the end user's chat

Run it after changing how those pages look; README.md shows the pictures. Uses Debian's
/usr/bin/chromium (never a downloaded browser) and nothing but the repository.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from .browser_support import CHROMIUM, LAUNCH_ARGS, LiveBroker, expect, live_broker
from .pages_support import (
    DESKTOP,
    PHONE,
    Story,
    add_people,
    http_sender,
    log_in_as,
    tell_story,
)
from .report_support import fortnight

DOCS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
SIZES = {"desktop": DESKTOP, "phone": PHONE}


async def demo(live: LiveBroker) -> tuple[Story, str]:
    """A finished session told in full, two more ended ones, and one running now (its
    id is returned too) with a few lines of chat."""
    people = await add_people(live.broker)
    send = http_sender(live)
    story = await tell_story(live.broker, send, people=people)
    for name in ("Fox Mulder", "Walter Skinner"):
        await tell_story(live.broker, send, end_user_name=name, people=people)
    admin = people[0]
    sessions = live.broker.sessions
    session, key = await sessions.start(admin)
    joined = await sessions.redeem(code=key.code, name="Jana Novak")
    await sessions.post_message(session.id, joined.actor,
                                "Hi! Outlook keeps asking for my password.")
    await sessions.post_message(session.id, sessions.technician_actor(admin),
                                "Hello Jana, I'm on it. Which Outlook version do you use?")
    await sessions.post_message(session.id, joined.actor, "Outlook 2021 on Windows 11.")
    return story, session.id


async def shoot(page: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), animations="disabled", caret="hide")
    print(path)


async def photograph(browser: Any, live: LiveBroker, story: Story, running: str,
                     out: Path, every: bool) -> None:
    for lang in ("en", "de"):
        for size, viewport in SIZES.items():
            context = await browser.new_context(viewport=viewport, locale=lang,
                                                timezone_id="Europe/Berlin")
            try:
                page = await context.new_page()
                await log_in_as(page, live, "admin@example.com", lang)
                tab = page.locator(f'[data-session-id="{running}"]').first
                await tab.click()
                await expect(page.locator(f'.pane[data-session-id="{running}"]')).to_be_visible()
                await shoot(page, out / f"dashboard-{lang}-{size}.png")
                await page.goto(live.url(f"/sessions/{story.session_id}/transcript"))
                await expect(page.locator(".transcript-lines").first).to_be_visible()
                await shoot(page, out / f"transcript-{lang}-{size}.png")
                await page.goto(live.url("/admin"))
                await expect(page.locator("#technicians tr").first).to_be_visible()
                await shoot(page, out / f"admin-{lang}-{size}.png")
                await page.goto(live.url("/sessions"))
                await expect(page.locator(".history-item").first).to_be_visible()
                await shoot(page, out / f"history-{lang}-{size}.png")
                await page.goto(live.url("/supervise"))
                await expect(page.locator(".supervise-item").first).to_be_visible()
                await shoot(page, out / f"supervise-{lang}-{size}.png")
                await page.goto(live.url(f"/supervise/{running}"))
                await expect(page.locator("#watch")).to_have_attribute("data-state", "live")
                await shoot(page, out / f"watch-{lang}-{size}.png")
            finally:
                await context.close()
            if every:
                await photograph_chat(browser, live, lang, size, out)


async def photograph_reports(browser: Any, live: LiveBroker, out: Path) -> None:
    """The reports, after two weeks of figures were added (the other pages are
    photographed before: those sessions would crowd them)."""
    team = next(team for team in await live.broker.teams.all() if team.name == "Tier 2")
    maria, bob = (await live.broker.technicians.get(2)), (await live.broker.technicians.get(3))
    await fortnight(live.broker, time.time(), [maria.id, bob.id], team.id)
    for lang in ("en", "de"):
        for size, viewport in SIZES.items():
            context = await browser.new_context(viewport=viewport, locale=lang,
                                                timezone_id="Europe/Berlin")
            try:
                page = await context.new_page()
                await log_in_as(page, live, "admin@example.com", lang)
                await page.goto(live.url("/reports"))
                await expect(page.locator("#reports")).to_have_attribute("data-loaded", "1")
                await shoot(page, out / f"reports-{lang}-{size}.png")
            finally:
                await context.close()


async def photograph_chat(browser: Any, live: LiveBroker, lang: str, size: str,
                          out: Path) -> None:
    """The end user's chat: a file from the technician and a page they pushed, which a
    browser that blocks pop-ups offers as a button."""
    technician = await live.broker.technicians.get(1)
    session, key = await live.broker.sessions.start(technician)
    context = await browser.new_context(viewport=SIZES[size], locale=lang,
                                        extra_http_headers={"Accept-Language": lang})
    try:
        page = await context.new_page()
        await page.add_init_script("window.open = () => null;")  # as a pop-up blocker does
        await page.goto(live.url(f"/j/{key.token}"))
        await expect(page.locator("#status")).to_have_attribute("data-state", "connected")
        token = await live.broker.technicians.create_token(technician.id)
        await http_sender(live)(session.id, token, "printer-driver-setup.pdf",
                                b"%PDF-1.7\n" + b"x" * 40_000)
        actor = live.broker.sessions.technician_actor(technician)
        await live.broker.sessions.post_message(session.id, actor, "open: example.com/help")
        await expect(page.locator("#open-page")).to_be_visible()
        await shoot(page, out / f"chat-{lang}-{size}.png")
    finally:
        await context.close()


async def main(out: Path, every: bool) -> None:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory() as directory:
        async with live_broker(Path(directory) / "data", chat_burst=100) as live:
            story, running = await demo(live)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                           args=LAUNCH_ARGS)
                try:
                    await photograph(browser, live, story, running, out, every)
                    await photograph_reports(browser, live, out)
                finally:
                    await browser.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=DOCS)
    parser.add_argument("--all", action="store_true",
                        help="also the end user's chat")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.out, arguments.all))
