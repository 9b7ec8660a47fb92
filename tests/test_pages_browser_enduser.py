"""The end user's chat page in real Chromium (issue 16): reconnect notices collapse into
one line, nothing offers remote control after the end, file cards say who sent them and
fold the SHA-256 away, an upload the broker asks to wait for waits and goes, a pushed
page (`open:`) opens or offers a prominent button, bidi controls are shown inert; and
the page fits a 390 px phone in English and German."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from broker.sessions import SessionState
from broker.technicians import Technician

from .browser_support import (
    PASSWORD,
    LiveBroker,
    People,
    expect,
    live_broker,
    message,
    require_chromium,
    screenshot,
)
from .browser_support import people as people  # noqa: F401 - a fixture
from .pages_support import PHONE, assert_fits, http_sender

pytestmark = pytest.mark.browser
CONTROL_WORDS = re.compile("control|Steuer", re.IGNORECASE)


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveBroker]:
    """Uploads limited to one at once, then one every two seconds (Retry-After 2)."""
    require_chromium()
    async with live_broker(tmp_path / "data", chat_burst=100, transfer_upload_burst=1,
                           transfer_upload_rate_per_second=0.5) as broker:
        yield broker


async def chat_with(live: LiveBroker, people: People, name: str = "Alice Example",
                    **options: Any) -> tuple[Any, Technician, str]:
    """A technician's session and the end user's page, joined by the link."""
    technician = await live.broker.technicians.add("alice@example.com", name, PASSWORD)
    session, key = await live.broker.sessions.start(technician)
    user = await people.page(**options)
    await user.goto(live.url(f"/j/{key.token}"))
    await expect(user).to_have_url(live.url(f"/s/{session.id}"))
    await expect(user.locator("#status")).to_have_attribute("data-state", "connected")
    return user, technician, session.id


async def until_state(live: LiveBroker, session_id: str, state: SessionState) -> None:
    """Wait (on the broker, not the clock) until the session is in `state`."""
    async with asyncio.timeout(5):
        while (await live.broker.sessions.get(session_id)).state is not state:
            await asyncio.sleep(0.02)


async def drop_and_return(live: LiveBroker, user: Any, session_id: str) -> None:
    await user.context.set_offline(True)
    await until_state(live, session_id, SessionState.RECONNECTING)
    await user.context.set_offline(False)
    await until_state(live, session_id, SessionState.ACTIVE)


async def test_reconnect_notices_collapse_into_one_line(live: LiveBroker,
                                                        people: People) -> None:
    user, technician, session_id = await chat_with(live, people)
    notices = user.locator("#messages .sys[data-drops]")
    await drop_and_return(live, user, session_id)
    await expect(notices).to_have_count(1)
    await expect(notices).to_contain_text("You are connected again")
    for _ in range(2):
        await drop_and_return(live, user, session_id)
    await expect(notices.last).to_contain_text("You are connected again · interrupted 3 times")
    await expect(notices).to_have_count(1)
    # A line between two runs of drops keeps them apart.
    await live.broker.sessions.post_message(session_id,
                                            live.broker.sessions.technician_actor(technician),
                                            "Still there?")
    await expect(message(user.locator("#messages"), "Still there?")).to_be_visible()
    await drop_and_return(live, user, session_id)
    await expect(notices).to_have_count(2)
    await expect(notices.last).to_have_text(re.compile(r"You are connected again$"))
    await expect(user.locator("#messages > li")).to_have_count(5)  # created, joined, 2+1
    people.assert_clean()


async def test_nothing_offers_remote_control_after_the_end(live: LiveBroker,
                                                           people: People) -> None:
    user, technician, session_id = await chat_with(live, people)
    await expect(user.locator("#agent-help")).to_be_visible()
    await live.broker.sessions.end(session_id, live.broker.sessions.technician_actor(
        technician), "ended_by_technician")
    await expect(user.locator("#ended-banner")).to_be_visible()
    await expect(user.locator("#agent-help")).to_be_hidden()
    await expect(user.get_by_role("button", name=CONTROL_WORDS)).to_have_count(0)
    await expect(user.get_by_text(CONTROL_WORDS).filter(visible=True)).to_have_count(0)
    # Nor after a reload of the ended chat.
    await user.reload()
    await expect(user.locator("#ended-banner")).to_be_visible()
    await expect(user.locator("#agent-help")).to_be_hidden()
    people.assert_clean()


async def test_file_cards_name_the_sender_and_fold_the_checksum(
        live: LiveBroker, people: People) -> None:
    user, technician, session_id = await chat_with(live, people)
    token = await live.broker.technicians.create_token(technician.id)
    data = b"Step 1: unplug the printer.\n" * 100
    await http_sender(live)(session_id, token, "fix-steps.txt", data)
    card = user.locator(".file-card")
    await expect(card).to_be_visible()
    who, link = card.locator(".file-who"), card.get_by_role("link")
    await expect(who).to_have_text("Alice Example sent a file")
    await expect(link).to_have_accessible_name("Download fix-steps.txt from Alice Example")
    # Who sent it is read first: above the download button.
    assert (await who.bounding_box())["y"] < (await link.bounding_box())["y"]
    hash_line = card.locator(".file-hash")
    await expect(hash_line).to_be_hidden()
    await card.get_by_text("Details").click()
    await expect(hash_line).to_have_text("SHA-256 " + hashlib.sha256(data).hexdigest())
    await expect(hash_line).to_be_visible()
    people.assert_clean()


async def test_an_upload_the_broker_holds_back_waits_and_then_goes(
        live: LiveBroker, people: People, tmp_path: Path) -> None:
    user, _, _ = await chat_with(live, people)
    files = []
    for n in (1, 2):
        path = tmp_path / f"photo-{n}.jpg"
        path.write_bytes(b"\xff\xd8\xff\xe0" + bytes([n]) * 5000)
        files.append(str(path))
    await user.locator('[data-role="file-input"]').set_input_files(files)
    waiting = user.locator(".transfer.waiting")
    await expect(waiting).to_be_visible()
    await expect(waiting.locator(".transfer-note")).to_contain_text(
        re.compile(r"Waiting: too many files at once\. Sending in [12] s"))
    await screenshot(user, "pages-enduser-upload-waiting")
    await expect(user.locator(".file-card")).to_have_count(2, timeout=10_000)
    await expect(user.locator(".transfer")).to_have_count(0)
    await expect(user.locator(".sys.error")).to_have_count(0)
    people.assert_clean()


async def test_a_pushed_page_opens_in_a_new_window(live: LiveBroker, people: People) -> None:
    user, technician, session_id = await chat_with(live, people)
    tech = live.broker.sessions.technician_actor(technician)
    address = live.url("/join?from=technician")
    async with user.context.expect_page() as opened:
        await live.broker.sessions.post_message(session_id, tech, f"open: {address}")
    popup = await opened.value
    await expect(popup).to_have_url(address)
    assert await popup.evaluate("window.opener") is None
    link = user.locator("#messages .msg .text a")
    await expect(link).to_have_attribute("href", address)
    await expect(user.locator("#open-page")).to_be_hidden()
    # Not again when the chat is reloaded: that page was opened already.
    pages = len(user.context.pages)
    await user.reload()
    await expect(user.locator("#messages .msg .text a")).to_be_visible()
    assert len(user.context.pages) == pages
    # An end user's "open:" and a technician's javascript: address are only text.
    await live.broker.sessions.post_message(session_id, tech, "open: javascript:alert(1)")
    await expect(message(user.locator("#messages"), "javascript:alert(1)")).to_be_visible()
    await expect(user.locator("#messages .msg .text a")).to_have_count(1)
    assert len(user.context.pages) == pages
    people.assert_clean()


async def test_where_pop_ups_are_blocked_a_button_opens_the_page(
        live: LiveBroker, people: People) -> None:
    user, technician, session_id = await chat_with(live, people, viewport=PHONE)
    # Headless Chromium has no pop-up blocker; a blocked window.open answers null, as here.
    await user.add_init_script("window.open = () => null;")
    await user.reload()
    await expect(user.locator("#status")).to_have_attribute("data-state", "connected")
    await live.broker.sessions.post_message(
        session_id, live.broker.sessions.technician_actor(technician), "open: example.com/help")
    button = user.get_by_role("link", name="Open example.com/help")
    await expect(button).to_be_visible()
    await expect(button).to_have_attribute("href", "https://example.com/help")
    await expect(button).to_be_in_viewport()
    await assert_fits(user)
    await screenshot(user, "pages-enduser-open-blocked-phone")
    await button.evaluate("a => a.addEventListener('click', e => e.preventDefault())")
    await button.click()
    await expect(user.locator("#open-page")).to_be_hidden()
    people.assert_clean()


async def test_bidi_controls_are_shown_inert_on_the_chat_page(live: LiveBroker,
                                                              people: People) -> None:
    user, technician, session_id = await chat_with(live, people, name="Bob\u202eevil")
    await expect(user.locator("#peer-name")).to_have_text("Bob[U+202E]evil")
    await live.broker.sessions.post_message(
        session_id, live.broker.sessions.technician_actor(technician),
        "Total: \u2067100\u2069 \u202dEUR")
    text = user.locator("#messages .msg .text")
    await expect(text).to_have_text("Total: [U+2067]100[U+2069] [U+202D]EUR")
    await expect(text).to_have_attribute("dir", "auto")
    await expect(user.locator("#messages .msg .who")).to_have_attribute("dir", "auto")
    await live.broker.shares.request(session_id, live.broker.sessions.technician_actor(
        technician), "s-bidi")
    line = user.locator("#messages .sys", has_text="asked to see the screen")
    await expect(line.locator("bdi")).to_have_text("Bob[U+202E]evil")
    shown = await user.evaluate("document.body.innerText")
    assert not re.search("[\u202a-\u202e\u2066-\u2069]", shown)
    people.assert_clean()


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_the_chat_fits_a_phone(live: LiveBroker, people: People, lang: str) -> None:
    user, technician, session_id = await chat_with(
        live, people, viewport=PHONE, locale=lang,
        extra_http_headers={"Accept-Language": lang})
    token = await live.broker.technicians.create_token(technician.id)
    await http_sender(live)(session_id, token, "Druckertreiber-Installationsanleitung.pdf",
                            b"%PDF-1.7\n" + b"x" * 3000)
    await expect(user.locator(".file-card")).to_be_visible()
    await user.locator(".file-card summary").click()
    await drop_and_return(live, user, session_id)
    await expect(user.locator("#messages .sys[data-drops]")).to_have_count(1)
    await assert_fits(user)
    await screenshot(user, f"pages-enduser-phone-{lang}")
    people.assert_clean()
