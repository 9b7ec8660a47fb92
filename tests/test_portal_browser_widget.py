"""The chat button on other websites in real Chromium (issue 18). The broker is at
127.0.0.1; the websites are at 127.0.0.2 (listed in widget_origins) and 127.0.0.3 (not
listed): other sites to the browser, so the framed pages get no cookies. On the listed
site the button says who is online, opens the portal in a panel, and the chat runs there
on the token from the fragment; the technician's goto: moves the site to another page
and the chat goes on there; offline, the customer leaves a message. The unlisted site
gets no answer it can read (no CORS) and cannot frame the pages (frame-ancestors)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from .browser_support import LiveBroker, People, expect, message, require_chromium, screenshot
from .browser_support import people as people  # noqa: F401 - a fixture
from .portal_support import (
    DESKTOP,
    PHONE,
    WIDE,
    Website,
    api,
    portal_broker,
    said_by_customer,
    take,
    team,
    technician,
    write,
)

pytestmark = pytest.mark.browser
SNIPPET = '<script src="BROKER/widget.js" data-team="tier-1" async></script>'
CHAT = {"en": "Chat with us", "de": "Chatten Sie mit uns"}
FRAME = "div[data-support-chat] iframe"


@pytest.fixture
async def sites(tmp_path: Path) -> AsyncIterator[tuple[LiveBroker, Website, Website]]:
    """The broker, the listed website and the other one."""
    require_chromium()
    listed, other = Website("127.0.0.2", SNIPPET), Website("127.0.0.3", SNIPPET)
    await listed.start()
    await other.start()
    try:
        async with portal_broker(tmp_path, widget_origins=listed.origin) as live:
            listed.broker_url = other.broker_url = live.base_url
            yield live, listed, other
    finally:
        await listed.stop()
        await other.stop()


def button(page: Any, lang: str = "en") -> Any:
    return page.get_by_role("button", name=re.compile(f"{CHAT[lang]}|Leave a message|"
                                                      "Nachricht hinterlassen|Back to|New"))


def frame_of(page: Any) -> Any:
    return page.frame_locator(FRAME)


async def fill_form(frame: Any, **values: str) -> None:
    for name, value in values.items():
        await frame.locator(f'#portal-form [name="{name}"]').fill(value)


async def test_the_chat_button_opens_the_chat_and_goto_moves_the_site(
        sites: tuple[LiveBroker, Website, Website], people: People) -> None:
    live, listed, _ = sites
    alice = await technician(live, "Alice Example")
    await team(live, "Tier 1", alice)
    page = await people.page(viewport=DESKTOP)
    await page.goto(listed.url("en", "home"))
    launcher = page.get_by_role("button", name="Chat with us")
    await expect(launcher).to_be_visible()
    await expect(launcher).to_have_attribute("data-online", "yes")
    await screenshot(page, "widget-en-desktop-closed")
    await launcher.click()
    frame = frame_of(page)
    await expect(frame.get_by_role("heading", name="Contact support · Tier 1")).to_be_visible()
    await fill_form(frame, name="Carla Kunde", email="carla@example.com",
                    description="The checkout page shows an error.")
    await frame.get_by_role("button", name="Start chat").click()
    await expect(frame.locator("#peer-name")).to_have_text("Our support team")
    await expect(frame.locator('#queue [data-role="place"]')).to_have_text(
        "You are next in the queue.")
    await expect(frame.locator("#status")).to_have_attribute("data-state", "connected")
    await expect(button(page)).to_have_text("Back to your chat")
    await screenshot(page, "widget-en-desktop-waiting")
    # No cookie of the broker was needed or set, and the token left the frame's address.
    assert [c for c in await page.context.cookies(live.base_url)
            if c["name"].startswith(("sb_participant", "sb_files"))] == []
    chat = next(f for f in page.frames if "/embed" in f.url)
    session_id = re.search(r"/s/([\w-]+)/embed", chat.url).group(1)
    assert "token" not in chat.url and "#" not in chat.url

    await take(live, alice, session_id)
    await expect(frame.locator("#peer-name")).to_have_text("Alice Example")
    await write(live, alice, session_id, "Hello Carla, let me show you our checkout help.")
    await expect(message(frame.locator("#messages"), "Hello Carla")).to_be_visible()

    # Only the broker's own frame may move the site, and only to http(s) addresses.
    visited: list[str] = []
    page.on("framenavigated", lambda f: visited.append(f.url) if f == page.main_frame else None)
    page.on("dialog", lambda dialog: visited.append("dialog: " + dialog.message))
    await page.evaluate("""(url) => window.postMessage({widget: "goto", url: url}, "*")""",
                        listed.url("en", "forged"))
    await chat.evaluate("""() => parent.postMessage({widget: "goto",
                                                     url: "javascript:alert(1)"}, "*")""")
    # goto: the site goes to the help page, and the chat goes on there.
    await write(live, alice, session_id, f"goto: {listed.url('en', 'checkout-help')}")
    await expect(page).to_have_url(listed.url("en", "checkout-help"))
    assert visited == [listed.url("en", "checkout-help")]
    frame = frame_of(page)
    await expect(frame.locator("#peer-name")).to_have_text("Alice Example")
    await expect(frame.locator("#status")).to_have_attribute("data-state", "connected")
    await expect(message(frame.locator("#messages"), "Hello Carla")).to_be_visible()
    await frame.locator("#text").fill("I am on the help page now.")
    await frame.locator("#text").press("Enter")
    await expect(message(frame.locator("#messages"), "help page now")).to_be_visible()
    assert await said_by_customer(live, alice, session_id) == ["I am on the help page now."]
    await screenshot(page, "widget-en-desktop-after-goto")
    # A reload stays where goto: went (the line is history now), the chat still open.
    await page.reload()
    await expect(frame_of(page).locator("#peer-name")).to_have_text("Alice Example")
    assert page.url == listed.url("en", "checkout-help")
    # Closed, the panel keeps the chat; the session's end makes the button forget it.
    await page.get_by_role("button", name="Close the chat").click()
    await expect(page.locator(FRAME)).to_be_hidden()
    await write(live, alice, session_id, "Did the help page answer your question?")
    await expect(button(page)).to_have_text("New message")
    await expect(button(page)).to_have_attribute("data-unread", "yes")
    await screenshot(page, "widget-en-desktop-unread")
    await button(page).click()
    await expect(message(frame_of(page).locator("#messages"), "help page answer")).to_be_visible()
    await expect(button(page)).to_have_attribute("data-unread", "no")
    await page.get_by_role("button", name="Close the chat").click()
    await api(live, "POST", f"/api/v1/sessions/{session_id}/end", 200, who=alice)
    await expect(button(page)).to_have_text("Chat with us")
    await button(page).click()
    await expect(frame_of(page).locator("#portal-form")).to_be_visible()
    people.assert_clean()


async def test_a_site_not_listed_gets_no_answer_and_cannot_frame_the_chat(
        sites: tuple[LiveBroker, Website, Website], people: People) -> None:
    live, listed, other = sites
    await team(live, "Tier 1", await technician(live, "Alice Example"))
    read = """(url) => fetch(url).then((r) => r.json()).then((d) => d.online, () => "refused")"""
    allowed = await people.page()
    await allowed.goto(listed.url("en", "home"))
    await expect(button(allowed)).to_be_visible()
    assert await allowed.evaluate(read, live.url("/api/v1/availability?team=tier-1")) is True
    # The same frame the button makes, by hand: it loads on the listed site...
    frame_it = """(url) => new Promise((done) => { const f = document.createElement("iframe");
      f.src = url; f.onload = () => done(true); document.body.append(f); })"""
    await allowed.evaluate(frame_it, live.url("/support/tier-1?embed=1"))
    await expect(allowed.frame_locator("body > iframe").locator("#portal-form")).to_be_visible()

    refused = await people.page()
    await refused.goto(other.url("en", "home"))
    assert await refused.evaluate(read, live.url("/api/v1/availability?team=tier-1")) == "refused"
    await refused.evaluate(frame_it, live.url("/support/tier-1?embed=1"))
    framed = next(f for f in refused.frames if f != refused.main_frame)
    # ...and not here: the browser shows its error page instead of the portal.
    assert await framed.locator("#portal-form").count() == 0
    assert framed.url.startswith("chrome-error://")
    # The button never appears: it could not read whether anyone is online.
    await expect(refused.locator("div[data-support-chat]")).to_have_count(0)
    problems = [p for p in people.problems if "CORS" not in p and "ancestor" not in p
                and "Failed to fetch" not in p]
    assert problems == [] and len(problems) < len(people.problems)


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_with_nobody_online_the_button_takes_a_message(
        sites: tuple[LiveBroker, Website, Website], people: People, lang: str) -> None:
    live, listed, _ = sites
    bob = await technician(live, "Bob Builder")
    team_id = await team(live, "Tier 1", bob, online=False)
    page = await people.page(viewport=PHONE)
    await page.goto(listed.url(lang, "home"))
    launcher = page.get_by_role("button", name={"en": "Leave a message",
                                                "de": "Nachricht hinterlassen"}[lang])
    await expect(launcher).to_have_attribute("data-online", "no")
    await launcher.click()
    frame = frame_of(page)
    await expect(frame.locator("#portal")).to_have_attribute("data-state", "offline")
    await fill_form(frame, name="Carla Kunde", email="carla@example.com",
                    description="Please call me back about my order.")
    await frame.locator('button[type="submit"]').click()
    await expect(frame.locator("#portal-sent")).to_be_visible()
    await expect(frame.locator("#portal-sent")).to_contain_text(
        {"en": "Thank you", "de": "Vielen Dank"}[lang])
    await screenshot(page, f"widget-{lang}-phone-message-sent")
    (request,) = await live.broker.intake.listed(bob, team_id=team_id)
    assert request.kind.value == "message" and request.language == lang
    people.assert_clean()


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_the_button_and_its_panel_fit_a_phone(
        sites: tuple[LiveBroker, Website, Website], people: People, lang: str) -> None:
    live, listed, _ = sites
    await team(live, "Tier 1", await technician(live, "Alice Example"))
    for size, name in ((PHONE, "phone"), (DESKTOP, "desktop")):
        page = await people.page(viewport=size)
        await page.goto(listed.url(lang, "home"))
        await button(page, lang).click()
        frame = frame_of(page)
        await expect(frame.locator("#portal")).to_have_attribute("data-state", "online")
        await screenshot(page, f"widget-{lang}-{name}-open")
        assert await page.evaluate(WIDE) == []
        inner = next(f for f in page.frames if "/support/" in f.url)
        assert await inner.evaluate(WIDE) == []
        await fill_form(frame, name="Jana Novak", email="jana@example.com",
                        description="Outlook fragt ständig nach dem Passwort.")
        await frame.locator('button[type="submit"]').click()
        await expect(frame.locator("#status")).to_have_attribute("data-state", "connected")
        chat = next(f for f in page.frames if "/embed" in f.url)
        assert await chat.evaluate(WIDE) == [] and await page.evaluate(WIDE) == []
        await screenshot(page, f"widget-{lang}-{name}-chat")
    people.assert_clean()
