"""The native agent with the technician's real dashboard in headless Chromium: the agent on
a virtual X display (Xvfb), its screen decoded in the dashboard's viewer, a click and typed
text from the dashboard arriving on that display (checked with xdotool and in an xterm),
the end user's chat page making the command that starts the agent, and a killed agent
coming back with --resume while the technician does nothing.

All traffic stays on loopback, in a network namespace of the test's own.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from .agent_support import Display, agent_running, live_broker_with_clock, xvfb
from .browser_support import LiveBroker, People, add_technician, expect, log_in, start_session
from .rtc_support import media_browser
from .rtc_support import netns as netns  # noqa: F401,PLC0414 - a fixture
from .test_rtc_browser import wait_frames_grow

pytestmark = pytest.mark.browser


@pytest.fixture
async def display(netns: None) -> AsyncIterator[Display]:
    async with xvfb() as display:
        yield display


@pytest.fixture
async def live(display: Display, tmp_path: Path) -> AsyncIterator[LiveBroker]:
    async with live_broker_with_clock(tmp_path / "data") as broker:
        yield broker


@pytest.fixture
async def people(live: LiveBroker) -> AsyncIterator[People]:
    async with media_browser() as people:
        yield people


async def dashboard(live: LiveBroker, people: People) -> tuple[Any, Any]:
    await add_technician(live, "Alice Example")
    dash = await people.page()
    await log_in(dash, live, "alice@example.com")
    _, pane = await start_session(dash)
    return dash, pane


async def screen_point(video: Any, x: int, y: int) -> tuple[float, float]:
    """Where on the page the agent's screen pixel (x, y) is shown (fitted, letterboxed)."""
    box = await video.evaluate("""v => { const r = v.getBoundingClientRect();
        return [r.left, r.top, r.width, r.height, v.videoWidth, v.videoHeight]; }""")
    left, top, width, height, vw, vh = box
    scale = min(width / vw, height / vh)
    left += (width - vw * scale) / 2
    top += (height - vh * scale) / 2
    return left + (x + 0.5) * scale * vw / 1280, top + (y + 0.5) * scale * vh / 720


async def test_the_dashboard_sees_and_controls_the_agents_screen(
        live: LiveBroker, people: People, display: Display, tmp_path: Path) -> None:
    typed = tmp_path / "typed.txt"
    await display.start_client("xterm", "-title", "typer", "-geometry", "60x8+200+300",
                               "-e", "sh", "-c",
                               f'read line; printf "%s" "$line" > {typed}; sleep 60')
    await display.wait_window("typer")
    dash, pane = await dashboard(live, people)
    link = await pane.locator('[data-role="join-url"]').input_value()
    async with agent_running(display, link, "--name", "Dana",
                             state_file=tmp_path / "state.json") as agent:
        badge = pane.locator(".agent-badge")
        await expect(badge).to_have_text("Support agent connected (Linux)", timeout=20000)
        await expect(pane.locator('[data-role="messages"]')).to_contain_text(
            "Dana's support agent connected")
        await pane.get_by_role("button", name="Request screen").click()
        await agent.expect("Alice Example asks to see your screen")
        await agent.type("y")
        viewer = pane.locator(".screen-viewer")
        video = viewer.locator("video")
        await wait_frames_grow(video, 10, timeout_ms=20000)
        assert await video.evaluate("v => [v.videoWidth, v.videoHeight]") == [1280, 720]

        # Control: asked for on the dashboard, allowed at the computer.
        await viewer.get_by_role("button", name="Request control").click()
        await expect(viewer).to_contain_text("Waiting for Dana to allow control")
        await agent.expect("asks to control this computer's mouse and keyboard")
        await agent.type("y")
        await expect(viewer.get_by_role("button", name="Stop control")).to_be_visible()
        stage = viewer.locator('[data-role="stage"]')
        await expect(stage).to_have_class(re.compile("controlling"))
        x, y = await screen_point(video, 400, 340)
        await dash.mouse.click(x, y)
        async with asyncio.timeout(10):
            while True:
                px, py = await display.pointer()
                if abs(px - 400) <= 1 and abs(py - 340) <= 1:
                    break
                await asyncio.sleep(0.05)
        await expect(viewer.locator(".remote-cursor")).to_be_visible()
        await dash.keyboard.type("Typed on the dashboard")
        await dash.keyboard.press("Enter")
        async with asyncio.timeout(10):
            while not typed.exists() or not typed.read_text():
                await asyncio.sleep(0.05)
        assert typed.read_text() == "Typed on the dashboard"

        await viewer.get_by_role("button", name="Stop control").click()
        await expect(viewer.get_by_role("button", name="Request control")).to_be_visible()
        await expect(pane.locator('[data-role="messages"]')).to_contain_text(
            "Alice Example ended remote control")
        await agent.expect("Remote control has ended")
        await dash.mouse.move(*(await screen_point(video, 900, 100)))
        await dash.wait_for_timeout(300)
        px, py = await display.pointer()
        assert abs(px - 400) <= 1 and abs(py - 340) <= 1  # nothing injected any more
    people.assert_clean()


async def test_killed_agent_resumes_and_the_picture_returns_without_a_click(
        live: LiveBroker, people: People, display: Display, tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    dash, pane = await dashboard(live, people)
    link = await pane.locator('[data-role="join-url"]').input_value()
    viewer = pane.locator(".screen-viewer")
    video = viewer.locator("video")
    async with agent_running(display, link, state_file=state_file) as agent:
        await expect(pane.locator(".agent-badge")).to_contain_text("connected", timeout=20000)
        await pane.get_by_role("button", name="Request screen").click()
        await agent.expect("asks to see your screen")
        await agent.type("y")
        await wait_frames_grow(video, 10, timeout_ms=20000)
        stream_before = await video.evaluate("v => v.srcObject.id")
        await agent.kill()
    await expect(pane.locator(".agent-badge")).to_have_text("Support agent not connected")
    async with agent_running(display, "--resume", state_file=state_file) as agent:
        await agent.expect("Resuming screen sharing")
        await dash.wait_for_function("([v, id]) => v.srcObject && v.srcObject.id !== id",
                                     arg=[await video.element_handle(), stream_before],
                                     timeout=20000)
        await wait_frames_grow(video, 10, timeout_ms=20000)
        await expect(pane.locator(".agent-badge")).to_contain_text("connected")
        assert "asks to see your screen" not in agent.transcript
    people.assert_clean()


async def test_the_chat_page_gives_the_command_and_the_agent_joins_beside_it(
        live: LiveBroker, people: People, display: Display, tmp_path: Path) -> None:
    dash, pane = await dashboard(live, people)
    user = await people.page()
    await user.goto(await pane.locator('[data-role="join-url"]').input_value())
    await expect(user.locator("#status")).to_have_text("Connected")
    help_box = user.locator("#agent-help")
    await help_box.locator("summary").click()
    await help_box.get_by_role("button", name="Show the command").click()
    command = await help_box.get_by_role("textbox").input_value()
    assert command.startswith('pipx run --spec "supportbroker[agent]" supportbroker-agent ')
    agent_link = command.rsplit(" ", 1)[1]
    assert "/a/" in agent_link
    async with agent_running(display, agent_link, state_file=tmp_path / "state.json") as agent:
        await agent.expect("Connected to the support session with Alice Example", 20)
        await expect(help_box.locator('[data-role="agent-connected"]')).to_be_visible()
        await expect(user.locator("#messages")).to_contain_text("Guest's support agent connected")
        await pane.get_by_role("button", name="Request screen").click()
        await agent.expect("asks to see your screen")
        # The page does not ask: the agent does, on the computer itself.
        await expect(user.get_by_role("dialog")).to_be_hidden()
        await agent.type("y")
        await wait_frames_grow(pane.locator(".screen-viewer video"), 10, timeout_ms=20000)
        # The chat goes on beside it, on the page.
        await user.locator("#text").fill("Can you see it?")
        await user.locator("#text").press("Enter")
        await expect(pane.locator('[data-role="messages"]')).to_contain_text("Can you see it?")
        await agent.expect("Guest: Can you see it?")  # the agent shows the chat too
    people.assert_clean()
