"""Screen sharing end to end in real headless Chromium: two browser contexts (the
technician's dashboard and the end user's chat), a fake screen, media over loopback.

Every test runs in its own network namespace with only loopback (tests/netns.py), the
broker and Chromium included, so no packet leaves 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from .browser_support import (
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


async def frames_decoded(video: Any) -> int:
    value = await video.get_attribute("data-frames-decoded")
    return int(value or 0)


async def wait_frames_grow(video: Any, by: int = 5, timeout_ms: int = 15000) -> int:
    """Until getStats' framesDecoded has grown by `by`; returns the new count."""
    start = await frames_decoded(video)
    await expect(video).to_have_attribute(
        "data-frames-decoded", re.compile(r"^\d+$"), timeout=timeout_ms)
    page = video.page
    await page.wait_for_function(
        "([el, n]) => Number(el.dataset.framesDecoded || 0) >= n",
        arg=[await video.element_handle(), start + by], timeout=timeout_ms)
    return await frames_decoded(video)


async def wait_frames_settle(video: Any, timeout_s: float = 10.0) -> int:
    """Until framesDecoded stays put across two stats polls (the page reads getStats
    once a second, so a count read soon after a pause can still be from before it);
    fails if the frames never stop."""
    last = await frames_decoded(video)
    for _ in range(int(timeout_s / 2.5)):
        await video.page.wait_for_timeout(2500)
        now = await frames_decoded(video)
        if now <= last + 1:
            return now
        last = now
    raise AssertionError(f"frames still arriving after {timeout_s} s: {last}")


async def open_session(live: LiveBroker, people: People) -> tuple[Any, Any, Any]:
    """The technician's dashboard with a session, and the end user in its chat."""
    await add_technician(live, "Alice Example")
    dash = await people.page()
    await log_in(dash, live, "alice@example.com")
    _, pane = await start_session(dash)
    link = await pane.locator('[data-role="join-url"]').input_value()
    user = await people.page()
    await user.goto(link)
    await expect(user.locator("#status")).to_have_text("Connected")
    await expect(pane.locator('[data-role="state"]')).to_have_text(re.compile("^Connected with"))
    return dash, pane, user


async def test_the_technician_sees_the_end_users_screen_after_consent(
        live: LiveBroker, people: People) -> None:
    dash, pane, user = await open_session(live, people)
    await pane.get_by_role("button", name="Request screen").click()
    viewer = pane.locator(".screen-viewer")
    await expect(viewer).to_contain_text("Waiting for Guest to allow screen sharing")

    dialog = user.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("Alice Example asks to see your screen")
    await expect(dialog).to_contain_text("entire screen, one window or one browser tab")
    await screenshot(user, "20-enduser-consent")
    await dialog.get_by_role("button", name="Share my screen").click()
    await expect(dialog).to_be_hidden()

    bar = user.locator(".screen-sharing")
    await expect(bar).to_contain_text("You are sharing your screen with Alice Example")
    await expect(viewer).to_contain_text("Guest's screen")
    video = viewer.locator("video")
    await wait_frames_grow(video, 10)
    size = await video.evaluate("v => [v.videoWidth, v.videoHeight]")
    assert size == [1280, 720]
    await expect(viewer.locator('[data-role="stats"]')).to_contain_text("1280×720")
    await screenshot(dash, "21-dashboard-viewing-screen")
    await screenshot(user, "22-enduser-sharing")

    # Every step is in both chats as a system line.
    for messages in (pane.locator('[data-role="messages"]'), user.locator("#messages")):
        await expect(messages).to_contain_text("Alice Example asked to see the screen")
        await expect(messages).to_contain_text("Guest agreed to share their screen")
        await expect(messages).to_contain_text("Guest started sharing their screen")

    # Fit, actual size, full screen.
    stage = viewer.locator('[data-role="stage"]')
    await viewer.get_by_role("button", name="Actual size").click()
    await expect(stage).to_have_attribute("data-size", "actual")
    width = await video.evaluate("v => v.getBoundingClientRect().width")
    assert width == 1280
    await viewer.get_by_role("button", name="Fit to window").click()
    await expect(stage).to_have_attribute("data-size", "fit")
    assert await video.evaluate("v => v.getBoundingClientRect().width") < 1280
    await viewer.get_by_role("button", name="Full screen").click()
    await dash.wait_for_function("document.fullscreenElement !== null")
    await dash.keyboard.press("Escape")
    await dash.evaluate("document.fullscreenElement && document.exitFullscreen()")

    # The technician pauses: no frames while paused; resume brings them back.
    await viewer.get_by_role("button", name="Pause").click()
    await expect(bar).to_contain_text("Screen sharing is paused")
    await expect(viewer.locator('[data-role="paused"]')).to_be_visible()
    paused_at = await wait_frames_settle(video)
    await dash.wait_for_timeout(2500)
    assert await frames_decoded(video) <= paused_at + 1
    await viewer.get_by_role("button", name="Resume").click()
    await expect(bar).to_contain_text("You are sharing your screen")
    await wait_frames_grow(video, 10)

    # The end user pauses too, and only they can resume that.
    await bar.get_by_role("button", name="Pause").click()
    await expect(viewer).to_contain_text("Guest paused screen sharing")
    await expect(viewer.get_by_role("button", name="Resume")).to_be_hidden()
    await bar.get_by_role("button", name="Resume").click()
    await wait_frames_grow(video, 5)

    # The end user stops with one button.
    await bar.get_by_role("button", name="Stop sharing").click()
    await expect(bar).to_be_hidden()
    await expect(viewer).to_be_hidden()
    await expect(pane.locator('[data-role="messages"]')).to_contain_text(
        "Guest stopped screen sharing")
    people.assert_clean()


async def test_a_refusal_shows_no_media_and_the_technician_is_told(
        live: LiveBroker, people: People) -> None:
    dash, pane, user = await open_session(live, people)
    await pane.get_by_role("button", name="Request screen").click()
    dialog = user.get_by_role("dialog")
    await dialog.get_by_role("button", name="Don't share").click()
    await expect(dialog).to_be_hidden()
    viewer = pane.locator(".screen-viewer")
    await expect(viewer).to_be_hidden()
    await expect(pane.locator(".screen-note")).to_contain_text("Guest declined to share")
    await expect(pane.locator('[data-role="messages"]')).to_contain_text(
        "Guest declined to share their screen")
    await expect(user.locator(".screen-sharing")).to_be_hidden()
    assert await viewer.locator("video").get_attribute("data-frames-decoded") is None
    # The technician may ask again, and this time the end user withdraws mid-way.
    await pane.get_by_role("button", name="Request screen").click()
    await expect(dialog).to_be_visible()
    await viewer.get_by_role("button", name="Cancel request").click()
    await expect(dialog).to_be_hidden()
    await expect(user.locator("#messages")).to_contain_text(
        "Alice Example cancelled screen sharing")
    people.assert_clean()


async def test_share_my_screen_the_other_way_and_switch_back(
        live: LiveBroker, people: People) -> None:
    dash, pane, user = await open_session(live, people)
    await pane.get_by_role("button", name="Share my screen").click()
    bar = pane.locator(".screen-sharing")
    await expect(bar).to_contain_text("You are sharing your screen with Guest")
    viewer = user.locator(".screen-viewer")
    await expect(viewer).to_contain_text("Alice Example's screen")
    await wait_frames_grow(viewer.locator("video"), 10)
    await expect(user.get_by_role("dialog")).to_be_hidden()  # nothing to consent to
    await screenshot(user, "23-enduser-viewing-technician")
    await expect(user.locator("#messages")).to_contain_text(
        "Alice Example started sharing their screen")

    # Chat keeps working while media flows.
    await user.locator("#text").fill("I can see your screen.")
    await user.locator("#text").press("Enter")
    await expect(pane.locator('[data-role="messages"]')).to_contain_text("I can see your screen.")

    # The end user may pause the technician's picture and close it.
    await viewer.get_by_role("button", name="Pause").click()
    await expect(bar).to_contain_text("paused")
    await viewer.get_by_role("button", name="Resume").click()
    await expect(bar).to_contain_text("You are sharing your screen")

    # Switch: the technician asks to see the customer's screen instead.
    await pane.get_by_role("button", name="Request screen").click()
    await expect(bar).to_be_hidden()
    await expect(viewer).to_be_hidden()
    dialog = user.get_by_role("dialog")
    await dialog.get_by_role("button", name="Share my screen").click()
    await wait_frames_grow(pane.locator(".screen-viewer video"), 5)
    await expect(pane.locator('[data-role="messages"]')).to_contain_text(
        "Alice Example switched screen sharing")
    people.assert_clean()


async def test_after_a_reload_sharing_can_be_asked_for_again(
        live: LiveBroker, people: People) -> None:
    dash, pane, user = await open_session(live, people)
    await pane.get_by_role("button", name="Request screen").click()
    await user.get_by_role("dialog").get_by_role("button", name="Share my screen").click()
    video = pane.locator(".screen-viewer video")
    await wait_frames_grow(video, 5)

    await user.reload()
    await expect(user.locator("#status")).to_have_text("Connected")
    await expect(pane.locator(".screen-viewer")).to_be_hidden()
    await expect(user.locator("#messages")).to_contain_text(
        "Screen sharing stopped: the page was reloaded")
    await expect(user.get_by_role("dialog")).to_be_hidden()

    await pane.get_by_role("button", name="Request screen").click()
    await user.get_by_role("dialog").get_by_role("button", name="Share my screen").click()
    await wait_frames_grow(video, 10)

    # The technician reloads the dashboard: the picture comes back without asking again.
    await dash.reload()
    await dash.locator("#list-active .session-item").first.click()
    pane = dash.locator(".pane:not([hidden])")
    await wait_frames_grow(pane.locator(".screen-viewer video"), 10)
    people.assert_clean()


async def test_an_ice_restart_keeps_the_picture(live: LiveBroker, people: People) -> None:
    """The viewer asks for an ICE restart (what it does when media fails); the sharing
    side answers with a restart offer and the picture goes on."""
    await add_technician(live, "Alice Example")
    dash = await people.page()
    sockets: list[Any] = []
    offers: list[dict[str, Any]] = []

    def route(ws: Any) -> None:
        server = ws.connect_to_server()
        sockets.append(server)
        ws.on_message(lambda message: server.send(message))

        def from_server(message: Any) -> None:
            if isinstance(message, str) and '"rtc.offer"' in message:
                offers.append(json.loads(message))
            ws.send(message)
        server.on_message(from_server)

    await dash.route_web_socket(re.compile(r"/api/v1/sessions/[\w-]+/ws$"), route)
    await log_in(dash, live, "alice@example.com")
    _, pane = await start_session(dash)
    user = await people.page()
    await user.goto(await pane.locator('[data-role="join-url"]').input_value())
    await expect(pane.locator('[data-role="state"]')).to_have_text(re.compile("^Connected with"))
    await pane.get_by_role("button", name="Request screen").click()
    await user.get_by_role("dialog").get_by_role("button", name="Share my screen").click()
    video = pane.locator(".screen-viewer video")
    await wait_frames_grow(video, 5)
    assert [o["restart"] for o in offers] == [False]

    share_id = offers[0]["id"]
    sockets[-1].send(json.dumps({"type": "rtc.restart", "id": share_id}))
    async with asyncio.timeout(10):
        while len(offers) < 2:
            await asyncio.sleep(0.05)
    assert offers[1]["restart"] is True
    assert offers[1]["sdp"] != offers[0]["sdp"]
    await wait_frames_grow(video, 10)
    people.assert_clean()
