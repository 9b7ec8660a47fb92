"""In Chromium, with three people: the end user shares their (fake) screen with the
technician, and the admin who watches the session sees it on the watch page, relayed by
the technician's page, read-only; the page says when nothing is shared and when the share
is paused, a share that starts while the supervisor watches reaches them too, so does the
technician's own screen, and when the technician's page is gone the page says the screen
does not reach the supervisor.

Like the other screen-sharing tests, it runs in a network namespace with only loopback."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from .browser_support import (
    PASSWORD,
    LiveBroker,
    People,
    add_technician,
    expect,
    live_broker,
    log_in,
    screenshot,
    start_session,
)
from .rtc_support import media_browser
from .rtc_support import netns as netns  # noqa: F401,PLC0414 - a fixture

pytestmark = pytest.mark.browser


@pytest.fixture
async def live(netns: None, tmp_path: Path) -> AsyncIterator[LiveBroker]:
    async with live_broker(tmp_path / "data") as broker:
        yield broker


@pytest.fixture
async def people(live: LiveBroker) -> AsyncIterator[People]:
    async with media_browser() as people:
        yield people


async def frames_painted(video: Any, more_than: int = 0) -> int:
    """Until the watch page painted more than `more_than` frames; returns the count."""
    await video.page.wait_for_function(
        "([v, n]) => Number(v.dataset.frames || 0) > n && v.videoWidth > 0",
        arg=[await video.element_handle(), more_than], timeout=15000)
    return int(await video.get_attribute("data-frames") or 0)


async def share_screen(pane: Any, user: Any) -> None:
    await pane.get_by_role("button", name="Request screen").click()
    dialog = user.get_by_role("dialog")
    await dialog.get_by_role("button", name="Share my screen").click()
    await expect(user.locator(".screen-sharing")).to_contain_text("You are sharing your screen")


async def test_a_watching_admin_sees_the_shared_screen(live: LiveBroker, people: People) -> None:
    await add_technician(live, "Bob Builder", "bob@example.com")
    await live.broker.technicians.add("anna@example.com", "Anna Admin", PASSWORD, is_admin=True)
    technician = await people.page()
    await log_in(technician, live, "bob@example.com")
    session_id, pane = await start_session(technician)
    link = await pane.locator('[data-role="join-url"]').input_value()
    user = await people.page()
    await user.goto(link)
    await expect(user.locator("#status")).to_have_text("Connected")
    await share_screen(pane, user)

    # Arriving while the screen is shared: the supervisor gets it.
    lead = await people.page(viewport={"width": 1366, "height": 850})
    await log_in(lead, live, "anna@example.com", empty=False)
    await lead.goto(live.url(f"/supervise/{session_id}"))
    screen = lead.locator("#watch-screen")
    video = screen.locator("video")
    await expect(screen).to_have_attribute("data-state", "showing", timeout=20000)
    await expect(screen).to_contain_text("Guest's screen, live. You only watch")
    seen = await frames_painted(video)
    # The end user's 1280x720 screen (a relay starts smaller and grows with the bandwidth).
    width, height = await video.evaluate("v => [v.videoWidth, v.videoHeight]")
    assert width > 0 and width * 9 == height * 16
    await frames_painted(video, seen + 5)  # frames keep arriving
    time = await video.evaluate("v => v.currentTime")
    await lead.wait_for_timeout(500)
    assert await video.evaluate("v => v.currentTime") > time
    await expect(pane.locator('[data-role="watching"]')).to_have_text(
        "Anna Admin is watching this session")
    # Read-only: nothing to type, click or control on the watch page.
    # (Join and Take over are acts of their own, outside the picture.)
    fields = lead.locator("#watch textarea, #watch input, #watch-screen button")
    await expect(fields).to_have_count(0)
    assert await video.evaluate("v => v.controls") is False
    assert await video.evaluate("v => getComputedStyle(v).pointerEvents") == "none"
    await screenshot(lead, "supervise-watch-screen")

    # Paused: the page says so and hides the picture; resumed: it comes back.
    viewer = pane.locator(".screen-viewer")
    await viewer.get_by_role("button", name="Pause").click()
    await expect(screen).to_have_attribute("data-state", "paused")
    await expect(screen).to_contain_text("Screen sharing is paused.")
    await expect(video).to_be_hidden()
    await viewer.get_by_role("button", name="Resume").click()
    await expect(screen).to_have_attribute("data-state", "showing", timeout=20000)
    seen = await frames_painted(video, int(await video.get_attribute("data-frames") or 0))

    # Stopped: nothing shared; a share that starts while watching reaches the watcher.
    await user.locator(".screen-sharing").get_by_role("button", name="Stop sharing").click()
    await expect(screen).to_have_attribute("data-state", "none")
    await expect(screen).to_contain_text("No screen is being shared right now.")
    await share_screen(pane, user)
    await expect(screen).to_have_attribute("data-state", "showing", timeout=20000)
    await frames_painted(video, int(await video.get_attribute("data-frames") or 0))

    # The supervisor leaves: the technician's page closes its relay.
    await expect(pane).to_have_attribute("data-relays", "1")
    await lead.goto(live.url("/supervise"))
    await expect(pane.locator('[data-role="watching"]')).to_have_text(
        "Anna Admin stopped watching")
    await expect(pane).not_to_have_attribute("data-relays", re.compile("."))

    # The technician shows their own screen instead: the watcher gets that one.
    await pane.get_by_role("button", name="Share my screen").click()
    await expect(pane.locator(".screen-sharing")).to_contain_text(
        "You are sharing your screen with Guest")
    await lead.goto(live.url(f"/supervise/{session_id}"))
    await expect(screen).to_have_attribute("data-state", "showing", timeout=20000)
    await expect(screen).to_contain_text("Bob Builder's screen, live.")
    await frames_painted(video)

    # The technician's page goes away while the share runs: the watch page says the
    # screen does not reach it, never that it is showing.
    await technician.close()
    await expect(screen).to_have_attribute("data-state", "lost", timeout=20000)
    await expect(screen).to_contain_text(
        "The shared screen is not reaching you right now. Trying again…")
    await expect(video).to_be_hidden()
    await screenshot(lead, "supervise-watch-screen-lost")

    # The end user was never told, and their page got no supervisor frame.
    await expect(user.locator("body")).not_to_contain_text("watch")
    await expect(user.locator("body")).not_to_contain_text(re.compile("Anna"))
    people.assert_clean()
