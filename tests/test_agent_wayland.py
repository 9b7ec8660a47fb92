"""The native agent on Wayland, end to end: a headless GNOME compositor (mutter) with
PipeWire in a D-Bus session of its own (tests/wayland_support.py), the agent as a real
subprocess in it, a real broker, and an aiortc viewer as the technician. The agent uses
mutter's own ScreenCast and RemoteDesktop APIs (`--wayland-api mutter`): the portal's
dialog cannot be clicked headless.

The Debian packages (mutter, pipewire, wireplumber, gstreamer1.0-pipewire, python3-gi,
weston, ...) are installed by .ci/run; every packet stays on loopback, in a network
namespace of the test's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from broker.clock import FakeClock

from .agent_support import Viewer, agent_running, live_broker_with_clock, start_agent
from .browser_support import LiveBroker
from .rtc_support import netns as netns  # noqa: F401,PLC0414 - a fixture
from .test_agent import refused, technician_session, viewer_for
from .wayland_support import Desktop, headless_mutter, png

RED = (220, 30, 40)


@pytest.fixture
async def desktop(netns: None) -> AsyncIterator[Desktop]:
    async with headless_mutter() as desktop:
        yield desktop


@pytest.fixture
async def live(desktop: Desktop, tmp_path: Path, database_url: str
               ) -> AsyncIterator[LiveBroker]:
    async with live_broker_with_clock(tmp_path / "data", FakeClock(time.time()),
                                      database_url=database_url) as broker:
        yield broker


def red_region(viewer: Viewer, size: tuple[int, int]) -> tuple[int, int] | None:
    """The centre of a 40x40 block of the test client's red in the last frame, if any."""
    frame = viewer.last_frame.reformat(format="rgb24")
    plane, data = frame.planes[0], bytes(frame.planes[0])

    def red(x: int, y: int) -> bool:
        offset = y * plane.line_size + x * 3
        r, g, b = data[offset], data[offset + 1], data[offset + 2]
        return abs(r - RED[0]) < 40 and abs(g - RED[1]) < 40 and abs(b - RED[2]) < 40
    for y in range(20, size[1] - 20, 20):
        for x in range(20, size[0] - 20, 20):
            if all(red(x + dx, y + dy) for dx in (-20, 0, 19) for dy in (-20, 0, 19)):
                return x, y
    return None


async def allowed_view(viewer: Viewer, agent: Any, question: str) -> None:
    """The technician asks to see the screen, the agent asks, the person says yes."""
    await viewer.next_event("agent.connected", 30)
    await viewer.share("share.request", source="agent")
    await agent.expect(question)
    await agent.type("y")
    await viewer.next_event("share.consented")
    await viewer.share("rtc.ready")


async def test_the_agent_streams_a_wayland_screen(
        live: LiveBroker, desktop: Desktop, tmp_path: Path) -> None:
    await desktop.start_client("weston-image", str(png(tmp_path / "red.png", (300, 200), RED)))
    http, session, token = await technician_session(live)
    viewer = await viewer_for(http, session["session_id"], token, "wl")
    shown: list[Any] = []
    try:
        async with agent_running(desktop, session["join_url"], "--name", "Dana",
                                 "--wayland-api", "mutter",
                                 state_file=tmp_path / "state.json") as agent:
            shown.append(agent)
            await agent.expect("GNOME's compositor")
            await allowed_view(viewer, agent, "asks to see your screen (the primary monitor)")
            await viewer.next_event("share.started")
            await asyncio.wait_for(viewer.got_frame.wait(), 20)
            # A still screen still gives frames: the agent repeats the last picture.
            await viewer.wait_frames(15)
            assert (viewer.last_frame.width, viewer.last_frame.height) == desktop.size
            async with asyncio.timeout(10):
                while red_region(viewer, desktop.size) is None:
                    await viewer.wait_frames(1)
            await agent.type("/quit")
            assert (await viewer.next_event("share.stopped"))["reason"] == "stopped"
            assert await agent.exit_code() == 0
    except BaseException:
        for agent in shown:
            print(agent.transcript)
        raise
    finally:
        await viewer.close()
        await http.close()


async def grant_control(viewer: Viewer, agent: Any) -> None:
    await viewer.share("control.request")
    agent.forget_output()
    await agent.expect("asks to control this computer's mouse and keyboard")
    await agent.type("y")
    await viewer.next_event("control.granted")
    # Granted only once the desktop's remote-desktop session is there.
    assert (await viewer.channel_message("control", 15))["granted"] is True
    await agent.expect("is controlling this computer")


async def type_line(viewer: Viewer, text: str, n: int) -> None:
    for char in text:
        await viewer.control(t="key", k=char, down=True)
        await viewer.control(t="key", k=char, down=False)
    await viewer.control(t="key", k="Enter", down=True)
    await viewer.control(t="key", k="Enter", down=False, n=n)
    assert (await viewer.channel_message("ack"))["n"] == n


def text_of(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def written(path: Path) -> str:
    """What the terminal's shell wrote into `path`, once it did."""
    async with asyncio.timeout(10):
        while not (text := text_of(path)):
            await asyncio.sleep(0.05)
    return text


async def test_control_on_wayland_clicks_types_and_ends_with_every_key_let_go(
        live: LiveBroker, desktop: Desktop, tmp_path: Path) -> None:
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    shell = tmp_path / "shell.sh"
    shell.write_text(f'#!/bin/sh\nread a; printf "%s" "$a" > {first}\n'
                     f'read b; printf "%s" "$b" > {second}\nsleep 60\n')
    shell.chmod(0o755)
    await desktop.start_client("weston-terminal", "--maximized", f"--shell={shell}")
    await asyncio.sleep(0.5)  # the terminal first, the picture above it
    await desktop.start_client("weston-image", str(png(tmp_path / "red.png", (300, 200), RED)))
    http, session, token = await technician_session(live)
    viewer = await viewer_for(http, session["session_id"], token, "wc")
    shown: list[Any] = []
    try:
        async with agent_running(desktop, session["join_url"], "--wayland-api", "mutter",
                                 state_file=tmp_path / "state.json") as agent:
            shown.append(agent)
            await allowed_view(viewer, agent, "asks to see your screen")
            await asyncio.wait_for(viewer.got_frame.wait(), 20)
            screen = await viewer.channel_message("screen", 15)
            assert (screen["w"], screen["h"]) == desktop.size
            async with asyncio.timeout(10):
                while (red := red_region(viewer, desktop.size)) is None:
                    await viewer.wait_frames(1)
            await refused(viewer, "not_granted", t="move", x=600, y=400)

            await grant_control(viewer, agent)
            await refused(viewer, "outside_screen", t="move", x=1280, y=10)
            # A click on the terminal, away from the picture above it, gives it the keys.
            x = 100 if red[0] > desktop.size[0] // 2 else desktop.size[0] - 100
            y = 100 if red[1] > desktop.size[1] // 2 else desktop.size[1] - 100
            await viewer.control(t="move", x=x, y=y)
            await viewer.control(t="down", x=x, y=y, b="left")
            await viewer.control(t="up", x=x, y=y, b="left")
            await type_line(viewer, "Hello, Wayland!", 1)
            assert await written(first) == "Hello, Wayland!"

            # Shift held when the person takes control back: it is let go.
            await viewer.control(t="key", k="Shift", down=True)
            await agent.type("/stop")
            assert (await viewer.channel_message("control"))["granted"] is False
            assert (await viewer.next_event("control.stopped"))["reason"] == "revoked"
            await refused(viewer, "not_granted", t="key", k="a", down=True)

            await grant_control(viewer, agent)
            await type_line(viewer, "ok", 2)
            assert await written(second) == "ok"
            await agent.type("/quit")
            assert await agent.exit_code() == 0
    except BaseException:
        for agent in shown:
            print(agent.transcript)
        raise
    finally:
        await viewer.close()
        await http.close()


async def test_a_wayland_desktop_without_a_screen_cast_says_so_and_asks_nothing(
        live: LiveBroker, desktop: Desktop, tmp_path: Path) -> None:
    http, session, token = await technician_session(live)
    viewer = await viewer_for(http, session["session_id"], token, "np")
    try:
        # This desktop's bus has no portal (tests/wayland_support.py activates nothing).
        async with agent_running(desktop, session["join_url"], "--wayland-api", "portal",
                                 state_file=tmp_path / "state.json") as agent:
            await agent.expect("lets no program see the screen")
            await viewer.next_event("agent.connected", 30)
            await viewer.share("share.request", source="agent")
            stopped = await viewer.next_event("share.stopped")
            assert stopped["reason"] == "screen_unavailable"
            assert "asks to see your screen" not in agent.transcript
    finally:
        await viewer.close()
        await http.close()


# GNOME's portal dialogs on the 1280x720 screen (centred, 520x300; Adwaita).
MONITOR_ROW, SHARE, ALLOW_INPUT = (640, 386), (852, 233), (830, 432)
DIALOG_ROW = (700, 440)   # "Allow remote interaction", white on the black terminal
SWITCH_TRACK = (814, 432)  # its switch: blue once on


def blue(rgb: tuple[int, int, int]) -> bool:
    return rgb[2] > 170 and rgb[0] < 130


async def click(hands: Any, *points: tuple[int, int]) -> None:
    for x, y in points:
        hands.motion(x, y)
        hands.button(0x110, True)
        hands.button(0x110, False)
        await asyncio.sleep(0.15)


async def answer_dialog(hands: Any, viewer: Viewer, event: str, *points: tuple[int, int]
                        ) -> dict[str, Any]:
    """Click `points` in the desktop's dialog, one after another and again (the dialog may
    not be there yet), until `event`; each click is followed by a look for it, so that a
    row is not clicked again (unselected) once the dialog was answered."""
    async with asyncio.timeout(45):
        while True:
            for point in points:
                await click(hands, point)
                with contextlib.suppress(TimeoutError):
                    return await viewer.next_event(event, 0.7)


async def switch_on(hands: Any, viewer: Viewer) -> None:
    """Switch "Allow remote interaction" on: click, then wait for the blue on the screen
    (the picture comes later than the click: clicking again too soon switches it off)."""
    async with asyncio.timeout(30):
        while True:
            await click(hands, ALLOW_INPUT)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    while not blue(viewer.pixel(*SWITCH_TRACK)):
                        await viewer.wait_frames(1)
                    return


def stored_token(path: Path) -> str:
    return str(json.loads(path.read_text())["restore_token"])


async def test_the_portal_asks_remembers_the_screen_and_says_when_input_was_not_allowed(
        live: LiveBroker, desktop: Desktop, tmp_path: Path) -> None:
    await desktop.start_portals()
    hands = await desktop.hands()
    typed = tmp_path / "typed.txt"
    shell = tmp_path / "shell.sh"
    shell.write_text(f'#!/bin/sh\nread a; printf "%s" "$a" > {typed}\nsleep 60\n')
    shell.chmod(0o755)
    await desktop.start_client("weston-terminal", "--maximized", f"--shell={shell}")
    http, session, token = await technician_session(live)
    viewer = await viewer_for(http, session["session_id"], token, "pt")
    state = tmp_path / "state.json"
    shown: list[Any] = []
    try:
        agent = await start_agent(desktop, session["join_url"], "--wayland-api",  # type: ignore[arg-type]
                                  "portal", state_file=state)
        shown.append(agent)
        await agent.expect("your desktop will ask you itself")
        await allowed_view(viewer, agent, "the screen you choose in your desktop's dialog")
        # The desktop's own dialog: the monitor, then Share ("Remember" is on).
        # (Share first: once the row is selected, clicking it again would unselect it.)
        await answer_dialog(hands, viewer, "share.started", SHARE, MONITOR_ROW, SHARE)
        await asyncio.wait_for(viewer.got_frame.wait(), 20)
        first = stored_token(state)
        assert first and stat.S_IMODE(state.stat().st_mode) == 0o600

        # A reboot: the agent is killed and resumes; the same screen comes back with no
        # dialog (nobody clicks now) and no question.
        await agent.kill()
        frames = viewer.frames
        agent = await start_agent(desktop, "--resume", "--wayland-api", "portal",  # type: ignore[arg-type]
                                  state_file=state)
        shown.append(agent)
        await agent.expect("Resuming screen sharing")
        async with asyncio.timeout(20):
            while viewer.frames <= frames + 5:
                await asyncio.sleep(0.05)
        assert "asks to see your screen" not in agent.transcript
        assert stored_token(state)

        # Control: the agent asks, then the desktop; "Allow remote interaction" left off.
        await viewer.share("control.request")
        await agent.expect("asks to control")
        await agent.type("y")
        stopped = await answer_dialog(hands, viewer, "control.stopped", SHARE)
        assert stopped["reason"] == "input_refused"
        await agent.expect("Remote control is not possible")
        await refused(viewer, "not_granted", t="key", k="a", down=True)

        # Allowed this time: the technician's keys reach the terminal through the portal.
        await viewer.share("control.request")
        agent.forget_output()
        await agent.expect("asks to control")
        await agent.type("y")
        await viewer.next_event("control.granted")
        async with asyncio.timeout(20):   # the dialog is on the shared screen (white row)
            while min(viewer.pixel(*DIALOG_ROW)) < 200:
                await viewer.wait_frames(1)
        await switch_on(hands, viewer)
        await click(hands, SHARE)
        message = await viewer.channel_message("control", 15)
        await viewer.control(t="down", x=300, y=300, b="left")
        await viewer.control(t="up", x=300, y=300, b="left")
        await type_line(viewer, "portal", 3)
        assert await written(typed) == "portal"
        assert message["granted"] is True
        await agent.type("/quit")
        assert await agent.exit_code() == 0
    except BaseException:
        for shown_agent in shown:
            print("-- agent --")
            print(shown_agent.transcript)
        raise
    finally:
        for shown_agent in shown:
            await shown_agent.kill()
        await viewer.close()
        await http.close()
