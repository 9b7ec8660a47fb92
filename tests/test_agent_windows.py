"""The native agent's own windows (ui="tk") on a real X display: the consent dialogs answer
with clicks, and a red bar at the top of the screen shows while the technician has control,
its button stopping it at once.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from .agent_support import (
    Display,
    agent_running,
)
from .browser_support import LiveBroker
from .rtc_support import must_run
from .rtc_support import netns as netns  # noqa: F401,PLC0414 - a fixture
from .test_agent import display as display  # noqa: F401,PLC0414 - a fixture
from .test_agent import live as live  # noqa: F401,PLC0414 - a fixture
from .test_agent import refused, technician_session, viewer_for


async def click_in(display: Display, window: str, dx: float, dy: float) -> None:
    """Click at a fraction (dx, dy) of a window's width and height."""
    out = await display.run("xdotool", "getwindowgeometry", "--shell", window)
    geometry = dict(line.split("=", 1) for line in out.split() if "=" in line)
    x = int(geometry["X"]) + int(int(geometry["WIDTH"]) * dx)
    y = int(geometry["Y"]) + int(int(geometry["HEIGHT"]) * dy)
    await display.run("xdotool", "mousemove", str(x), str(y), "click", "1")


async def test_windows_ask_and_a_red_bar_shows_control_with_a_stop_button(
        live: LiveBroker, display: Display, tmp_path: Path) -> None:
    await require_tk(display)
    http, session, token = await technician_session(live)
    viewer = await viewer_for(http, session["session_id"], token, "tk")
    try:
        async with agent_running(display, session["join_url"], state_file=tmp_path / "s.json",
                                 ui="tk") as agent:
            await viewer.next_event("agent.connected", 30)
            await viewer.share("share.request", source="agent")
            dialog = await display.wait_window("Support request")
            await click_in(display, dialog, 0.3, 0.8)  # "Allow", left of the two buttons
            await viewer.next_event("share.consented")
            await display.no_window("Support request")
            await viewer.share("rtc.ready")
            await asyncio.wait_for(viewer.got_frame.wait(), 20)

            await viewer.share("control.request")
            dialog = await display.wait_window("Support request")
            await click_in(display, dialog, 0.7, 0.8)  # "Don't allow"
            await viewer.next_event("control.refused")
            await display.no_window("Support request")
            await display.no_window("Remote control active", 1)

            await viewer.share("control.request")
            dialog = await display.wait_window("Support request")
            await click_in(display, dialog, 0.3, 0.8)
            await viewer.next_event("control.granted")
            bar = await display.wait_window("Remote control active")
            out = await display.run("xdotool", "getwindowgeometry", "--shell", bar)
            assert "Y=0" in out.split()  # at the top of the screen
            await asyncio.wait_for(viewer.channel_open.wait(), 10)
            await viewer.control(t="move", x=20, y=600)
            async with asyncio.timeout(5):
                while await display.pointer() != (20, 600):
                    await asyncio.sleep(0.05)
            await click_in(display, bar, 0.9, 0.5)  # "Stop control"
            assert (await viewer.next_event("control.stopped"))["reason"] == "revoked"
            await display.no_window("Remote control active")
            await refused(viewer, "not_granted", t="move", x=700, y=500)
            assert "is controlling this computer" in agent.transcript
    finally:
        await viewer.close()
        await http.close()


async def require_tk(display: Display) -> None:
    """Tk must work on the display, for this Python (Debian's python3-tk is not this one)."""
    try:
        await display.run(sys.executable, "-c", "import tkinter; tkinter.Tk().destroy()")
    except AssertionError as exc:
        must_run(f"Tk is not available to this Python: {exc}")
