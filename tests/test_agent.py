"""The native agent end to end, as a real subprocess on a real (virtual) X display: it
joins, asks the person at the computer, streams the real screen to an aiortc viewer, injects
the technician's input only with consent, stops at once when revoked, and resumes after
being killed; a resume after the reconnect window is refused.

Xvfb, xterm and xdotool are Debian packages (.ci/run installs them); every packet stays on
loopback, in a network namespace of the test's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from broker.clock import FakeClock

from .agent_support import (
    Display,
    Viewer,
    agent_running,
    live_broker_with_clock,
    require,
    xvfb,
)
from .browser_support import LiveBroker, add_technician
from .rtc_support import netns as netns  # noqa: F401,PLC0414 - a fixture


@pytest.fixture
async def display(netns: None) -> AsyncIterator[Display]:
    async with xvfb() as display:
        yield display


@pytest.fixture
async def live(display: Display, tmp_path: Path, database_url: str
               ) -> AsyncIterator[LiveBroker]:
    """A broker on loopback with a clock the test moves (it starts at the real time)."""
    async with live_broker_with_clock(tmp_path / "data", FakeClock(time.time()),
                                      database_url=database_url) as broker:
        yield broker


async def technician_session(live: LiveBroker) -> tuple[ClientSession, dict[str, Any], str]:
    tech = await add_technician(live, "Alice Example")
    token = await live.broker.technicians.create_token(tech.id)
    http = ClientSession(live.base_url)
    async with http.post("/api/v1/sessions",
                         headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 201
        return http, dict(await response.json()), token


async def viewer_for(http: ClientSession, session_id: str, token: str, share_id: str) -> Viewer:
    ws = await http.ws_connect(f"/api/v1/sessions/{session_id}/ws")
    await ws.send_json({"type": "hello", "token": token, "after": 0})
    return Viewer(ws, share_id)


async def test_the_agent_joins_asks_and_streams_the_real_screen(
        live: LiveBroker, display: Display, tmp_path: Path) -> None:
    await display.start_client("xterm", "-bg", "red", "-geometry", "40x10+100+100")
    await display.wait_window("xterm")
    http, session, token = await technician_session(live)
    viewer = await viewer_for(http, session["session_id"], token, "scr")
    try:
        async with agent_running(display, session["join_url"], "--name", "Dana",
                                 state_file=tmp_path / "state.json") as agent:
            connected = await viewer.next_event("agent.connected", 30)
            assert connected["author"]["name"] == "Dana"
            await agent.expect("Connected to the support session with Alice Example")
            await viewer.share("share.request", source="agent")
            await agent.expect("Alice Example asks to see your screen (monitor 1, 1280×720)")
            await agent.type("y")
            await viewer.next_event("share.consented")
            await viewer.share("rtc.ready")
            await viewer.next_event("share.started")
            await asyncio.wait_for(viewer.got_frame.wait(), 20)
            await viewer.wait_frames(10)
            assert (viewer.last_frame.width, viewer.last_frame.height) == (1280, 720)
            red, green, blue = viewer.pixel(150, 150)  # inside the red xterm
            assert red > 180 and green < 90 and blue < 90, (red, green, blue)
            red, green, blue = viewer.pixel(1000, 600)  # the black root window
            assert red < 60 and green < 60 and blue < 60
            await agent.type("/quit")
            stopped = await viewer.next_event("share.stopped")
            assert stopped["reason"] == "stopped"
            assert await agent.exit_code() == 0
            assert not (tmp_path / "state.json").exists()
    finally:
        await viewer.close()
        await http.close()


async def shared_screen(live: LiveBroker, display: Display, tmp_path: Path, agent: Any,
                        viewer: Viewer) -> None:
    """From the agent's join to frames at the viewer."""
    await viewer.next_event("agent.connected", 30)
    await viewer.share("share.request", source="agent")
    await agent.expect("asks to see your screen")
    await agent.type("y")
    await viewer.next_event("share.consented")
    await viewer.share("rtc.ready")
    await asyncio.wait_for(viewer.got_frame.wait(), 20)
    await asyncio.wait_for(viewer.channel_open.wait(), 10)
    screen = await viewer.channel_message("screen")
    assert (screen["w"], screen["h"]) == (1280, 720)


async def refused(viewer: Viewer, code: str, **message: Any) -> None:
    await viewer.control(**message)
    answer = await viewer.channel_message("error")
    assert answer["code"] == code, answer


async def test_control_needs_consent_injects_checked_input_and_stops_at_once(
        live: LiveBroker, display: Display, tmp_path: Path) -> None:
    typed = tmp_path / "typed.txt"
    await display.start_client("xterm", "-title", "typer", "-geometry", "60x8+200+300",
                               "-e", "sh", "-c",
                               f'read line; printf "%s" "$line" > {typed}; sleep 30')
    await display.wait_window("typer")
    await display.run("xdotool", "mousemove", "5", "5")
    http, session, token = await technician_session(live)
    viewer = await viewer_for(http, session["session_id"], token, "ctl")
    try:
        async with agent_running(display, session["join_url"],
                                 state_file=tmp_path / "state.json") as agent:
            await shared_screen(live, display, tmp_path, agent, viewer)
            # Nothing is injected before control is granted.
            await refused(viewer, "not_granted", t="move", x=600, y=400)
            await viewer.share("control.request")
            await agent.expect("asks to control this computer's mouse and keyboard")
            await agent.type("n")
            await viewer.next_event("control.refused")
            await refused(viewer, "not_granted", t="move", x=600, y=400)
            assert await display.pointer() == (5, 5)

            await viewer.share("control.request")
            agent.forget_output()
            await agent.expect("asks to control")
            await agent.type("y")
            await viewer.next_event("control.granted")
            assert (await viewer.channel_message("control"))["granted"] is True
            await agent.expect("is controlling this computer")
            await viewer.control(t="move", x=300, y=200)
            cursor = await viewer.channel_message("cursor")
            while (cursor["x"], cursor["y"]) != (300, 200):
                cursor = await viewer.channel_message("cursor")
            assert await display.pointer() == (300, 200)
            # Checked before anything reaches X: off the screen, unknown keys, nonsense.
            await refused(viewer, "outside_screen", t="move", x=1280, y=10)
            await refused(viewer, "outside_screen", t="down", x=-1, y=10)
            await refused(viewer, "unknown_key", t="key", k="Hyper", down=True)
            await refused(viewer, "bad_event", t="key", k="a", down="yes")
            await refused(viewer, "bad_event", t="launch", x=1, y=1)
            assert await display.pointer() == (300, 200)

            # A click into the terminal, then typed text and Enter arrive there.
            await viewer.control(t="down", x=400, y=340, b="left")
            await viewer.control(t="up", x=400, y=340, b="left")
            for char in "Hello, agent!":
                await viewer.control(t="key", k=char, down=True)
                await viewer.control(t="key", k=char, down=False)
            await viewer.control(t="key", k="Enter", down=True, n=1)
            await viewer.control(t="key", k="Enter", down=False)
            assert (await viewer.channel_message("ack"))["n"] == 1
            async with asyncio.timeout(10):
                while not typed.exists() or not typed.read_text():
                    await asyncio.sleep(0.05)
            assert typed.read_text() == "Hello, agent!"

            # The hotkey takes control back at once, before the broker even hears of it.
            await display.run("xdotool", "key", "ctrl+alt+shift+s")
            assert (await viewer.channel_message("control"))["granted"] is False
            stopped = await viewer.next_event("control.stopped")
            assert stopped["reason"] == "hotkey"
            await refused(viewer, "not_granted", t="move", x=700, y=500)
            assert await display.pointer() == (400, 340)

            # Granted again, then ended by typing /stop in the agent's terminal.
            await viewer.share("control.request")
            agent.forget_output()
            await agent.expect("asks to control")
            await agent.type("y")
            await viewer.next_event("control.granted")
            await viewer.control(t="move", x=640, y=360)
            async with asyncio.timeout(5):
                while await display.pointer() != (640, 360):
                    await asyncio.sleep(0.05)
            await agent.type("/stop")
            assert (await viewer.next_event("control.stopped"))["reason"] == "revoked"
            await refused(viewer, "not_granted", t="move", x=10, y=10)
            assert await display.pointer() == (640, 360)

            # Allowed and stopped at once, before the broker confirms: the stop wins.
            await viewer.share("control.request")
            agent.forget_output()
            await agent.expect("asks to control")
            await agent.type("y\n/stop")
            seen: list[dict[str, Any]] = []
            while not seen or seen[-1]["type"] not in ("control.refused", "control.stopped"):
                event = (await viewer.next("event"))["event"]
                if event["type"].startswith("control."):
                    seen.append(event)
            assert seen[-1]["type"] == "control.refused" or seen[-1]["reason"] == "revoked"
            await viewer.control(t="move", x=20, y=20, n=7)
            told: list[dict[str, Any]] = []  # everything the agent told the page since
            async with asyncio.timeout(10):
                while not told or told[-1].get("n") != 7:
                    told.append(await viewer.messages.get())
            assert told[-1]["t"] == "error" and told[-1]["code"] == "not_granted"
            assert {"t": "control", "granted": True} not in told
            assert "is controlling" not in agent.transcript
            assert await display.pointer() == (640, 360)
    finally:
        await viewer.close()
        await http.close()


async def test_killed_and_resumed_the_screen_comes_back_by_itself(
        live: LiveBroker, display: Display, tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    http, session, token = await technician_session(live)
    viewer = await viewer_for(http, session["session_id"], token, "res")
    try:
        async with agent_running(display, session["join_url"], state_file=state_file) as agent:
            await shared_screen(live, display, tmp_path, agent, viewer)
            assert state_file.stat().st_mode & 0o777 == 0o600
            await agent.kill()  # a crash, a power cut: nothing said to anybody
        await viewer.next_event("agent.disconnected", 30)
        disconnected = await viewer.next_event("disconnected")
        assert disconnected["reason"] == "connection_lost"
        frames_before = viewer.frames
        offers_before = viewer.pc
        async with agent_running(display, "--resume", state_file=state_file) as agent:
            await agent.expect("Resuming screen sharing")
            await viewer.next_event("reconnected", 30)
            await viewer.next_event("agent.connected")  # stored after the replay
            async with asyncio.timeout(20):
                while viewer.frames < frames_before + 10:
                    await asyncio.sleep(0.05)
            assert viewer.pc is not offers_before  # a new connection, offered by the agent
            assert "asks to see your screen" not in agent.transcript  # no second question
    finally:
        await viewer.close()
        await http.close()


async def test_resume_after_the_window_is_refused_with_a_clear_message(
        live: LiveBroker, display: Display, tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    http, session, token = await technician_session(live)
    viewer = await viewer_for(http, session["session_id"], token, "late")
    try:
        async with agent_running(display, session["join_url"], state_file=state_file) as agent:
            await viewer.next_event("agent.connected", 30)
            await agent.kill()
        await viewer.next_event("disconnected", 30)
        clock = live.broker.clock
        assert isinstance(clock, FakeClock)
        clock.advance(601)  # past the 10-minute window
        await live.broker.sessions.window.end_lapsed()  # what the sweep does every few seconds
        assert (await viewer.next_event("ended"))["reason"] == "reconnect_timeout"
        async with agent_running(display, "--resume", state_file=state_file) as agent:
            line = await agent.expect("Cannot resume")
            assert "away longer than the reconnect window (10 minutes)" in line
            assert await agent.exit_code() == 3
        assert not state_file.exists()
        # With nothing stored, resuming says so too.
        async with agent_running(display, "--resume", state_file=state_file) as agent:
            await agent.expect("Cannot resume: this computer is not in a support session")
            assert await agent.exit_code() == 3
    finally:
        await viewer.close()
        await http.close()


async def grant_control(viewer: Viewer, agent: Any) -> None:
    await viewer.share("control.request")
    agent.forget_output()
    await agent.expect("asks to control")
    await agent.type("y")
    await viewer.next_event("control.granted")


async def test_clipboard_text_both_ways_on_request_only(
        live: LiveBroker, display: Display, tmp_path: Path) -> None:
    require("xclip")
    http, session, token = await technician_session(live)
    viewer = await viewer_for(http, session["session_id"], token, "clip")
    try:
        async with agent_running(display, session["join_url"],
                                 state_file=tmp_path / "state.json") as agent:
            await shared_screen(live, display, tmp_path, agent, viewer)
            await display.run("sh", "-c", "printf %s 'secret before control' | "
                              "xclip -selection clipboard -i >/dev/null 2>&1")
            await refused(viewer, "not_granted", t="clipboard.get")
            await grant_control(viewer, agent)
            await viewer.control(t="clipboard.set", text="From the technician: ✓ ß")
            await viewer.channel_message("clipboard.done")
            assert await display.run("xclip", "-selection", "clipboard", "-o") == \
                "From the technician: ✓ ß"
            await agent.expect("Your technician put text into your clipboard")
            await display.run("sh", "-c", "printf %s 'from the end user' | "
                              "xclip -selection clipboard -i >/dev/null 2>&1")
            await viewer.control(t="clipboard.get")
            assert (await viewer.channel_message("clipboard"))["text"] == "from the end user"
            await agent.expect("Your technician copied the text in your clipboard")
    finally:
        await viewer.close()
        await http.close()


async def test_files_both_ways_over_tus_with_checked_downloads(
        live: LiveBroker, display: Display, tmp_path: Path) -> None:
    from agent import transfer

    http, session, token = await technician_session(live)
    viewer = await viewer_for(http, session["session_id"], token, "files")
    downloads = tmp_path / "downloads"
    outgoing = tmp_path / "from the end user.bin"
    outgoing.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    incoming = tmp_path / "tool.zip"
    incoming.write_bytes(b"PK\x03\x04" + os.urandom(1024 * 1024))
    try:
        async with agent_running(display, session["join_url"], "--download-dir",
                                 str(downloads), state_file=tmp_path / "state.json") as agent:
            await agent.expect("Connected to the support session")
            # The technician sends a file: the agent saves it, checked against its SHA-256.
            await transfer.upload(http, live.base_url, session["session_id"], token, incoming)
            await agent.expect("Your technician sent tool.zip: saved as", 30)
            assert (downloads / "tool.zip").read_bytes() == incoming.read_bytes()
            assert [p.name for p in downloads.iterdir()] == ["tool.zip"]
            # The end user sends one from the agent's terminal.
            await agent.type(f"/send {outgoing}")
            offered = await viewer.next_event("file.offered", 30)
            while offered["name"] == "tool.zip":  # the technician's own, first
                offered = await viewer.next_event("file.offered", 30)
            assert offered["name"] == "from the end user.bin"
            assert offered["sha256"] == hashlib.sha256(outgoing.read_bytes()).hexdigest()
            assert offered["author"]["role"] == "end_user"
            await agent.expect("Sent from the end user.bin.")
    finally:
        await viewer.close()
        await http.close()
