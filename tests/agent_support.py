"""Helpers for the native agent's tests: a virtual X display (Xvfb) with real X clients on
it, xdotool to read the pointer and type, the agent as a real subprocess whose terminal the
test reads and answers, and an aiortc viewer that also opens the control channel.

Everything runs on loopback: the broker and the agent in the test's network namespace
(tests/netns.py), the X display on a Unix socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiortc import RTCDataChannel

from broker.clock import Clock

from .browser_support import LiveBroker, live_broker
from .rtc_peer import AiortcPeer
from .rtc_support import must_run

ROOT = Path(__file__).resolve().parent.parent
SCREEN = (1280, 720)


def require(*programs: str) -> None:
    """Skip without these programs, except on CI (where .ci/run installs them)."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        must_run(f"{', '.join(missing)} missing (apt-get install xvfb xdotool xterm xclip)")


class Display:
    """An Xvfb server of our own, and the X clients the test starts on it."""

    def __init__(self, number: int, size: tuple[int, int]) -> None:
        self.number = number
        self.size = size
        self.name = f":{number}"
        self.env = {**os.environ, "DISPLAY": self.name}
        self.env.pop("WAYLAND_DISPLAY", None)
        self._clients: list[asyncio.subprocess.Process] = []

    async def run(self, *argv: str, check: bool = True) -> str:
        """Run an X tool to completion (xdotool, xclip); its output."""
        process = await asyncio.create_subprocess_exec(
            *argv, env=self.env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 15)
        if check and process.returncode != 0:
            raise AssertionError(f"{argv} failed: {err.decode()}")
        return out.decode()

    async def start_client(self, *argv: str) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *argv, env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        self._clients.append(process)
        return process

    async def pointer(self) -> tuple[int, int]:
        out = await self.run("xdotool", "getmouselocation", "--shell")
        values = dict(line.split("=", 1) for line in out.split() if "=" in line)
        return int(values["X"]), int(values["Y"])

    async def wait_window(self, name: str, seconds: float = 10) -> str:
        """The id of a window whose title matches `name`, once it is mapped."""
        async with asyncio.timeout(seconds):
            while True:
                out = await self.run("xdotool", "search", "--onlyvisible", "--name", name,
                                     check=False)
                if out.strip():
                    return out.split()[0]
                await asyncio.sleep(0.1)

    async def no_window(self, name: str, seconds: float = 10) -> None:
        async with asyncio.timeout(seconds):
            while (await self.run("xdotool", "search", "--onlyvisible", "--name", name,
                                  check=False)).strip():
                await asyncio.sleep(0.1)

    async def stop_clients(self) -> None:
        for process in self._clients:
            if process.returncode is None:
                process.kill()
                await process.wait()


@contextlib.asynccontextmanager
async def xvfb(size: tuple[int, int] = SCREEN) -> AsyncIterator[Display]:
    """A new Xvfb; it picks a free display number itself and tells it (-displayfd)."""
    require("Xvfb", "xdotool")
    read_end, write_end = os.pipe()
    try:
        server = await asyncio.create_subprocess_exec(
            "Xvfb", "-displayfd", str(write_end), "-screen", "0", f"{size[0]}x{size[1]}x24",
            "-nolisten", "tcp", "-noreset", pass_fds=(write_end,),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    finally:
        os.close(write_end)
    display: Display | None = None
    try:
        with os.fdopen(read_end, "rb") as numbers:
            line = await asyncio.wait_for(asyncio.to_thread(numbers.readline), 15)
        if not line.strip():
            raise AssertionError("Xvfb did not start")
        display = Display(int(line), size)
        yield display
    finally:
        if display is not None:
            await display.stop_clients()
        server.terminate()
        try:
            await asyncio.wait_for(server.wait(), 5)
        except TimeoutError:
            server.kill()
            await server.wait()


class AgentProcess:
    """`python -m agent` as a subprocess: the test reads its terminal and answers it."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.output: list[str] = []
        self._new = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.output.append(raw.decode(errors="replace").rstrip("\n"))
            self._new.set()
        self._new.set()

    async def expect(self, text: str, seconds: float = 20) -> str:
        """Until a line containing `text` has been printed (checked from the start)."""
        async with asyncio.timeout(seconds):
            seen = 0
            while True:
                for line in self.output[seen:]:
                    if text in line:
                        return line
                seen = len(self.output)
                if self.process.returncode is not None and self._reader.done():
                    raise AssertionError(f"the agent exited ({self.process.returncode}) "
                                         f"without printing {text!r}:\n{self.transcript}")
                self._new.clear()
                await self._new.wait()

    def forget_output(self) -> None:
        """Later `expect` calls only look at what is printed from now on."""
        self.output.clear()

    async def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((line + "\n").encode())
        await self.process.stdin.drain()

    async def exit_code(self, seconds: float = 20) -> int:
        code = await asyncio.wait_for(self.process.wait(), seconds)
        await asyncio.wait_for(self._reader, 5)
        return code

    @property
    def transcript(self) -> str:
        return "\n".join(self.output)

    async def kill(self) -> None:
        """Like a crash or a power cut: no goodbye to anyone."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def start_agent(display: Display, *args: str, state_file: Path,
                      ui: str = "terminal") -> AgentProcess:
    env = {**display.env, "PYTHONUNBUFFERED": "1", "HOME": str(state_file.parent),
           "XDG_CONFIG_HOME": str(state_file.parent / "config")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", *args, "--ui", ui, "--state-file", str(state_file),
        *([] if "--download-dir" in args else ["--no-downloads"]), cwd=ROOT, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    return AgentProcess(process)


@contextlib.asynccontextmanager
async def agent_running(display: Display, *args: str, state_file: Path,
                        ui: str = "terminal") -> AsyncIterator[AgentProcess]:
    agent = await start_agent(display, *args, state_file=state_file, ui=ui)
    try:
        yield agent
    finally:
        await agent.kill()


def live_broker_with_clock(data_dir: Path, clock: Clock | None = None,
                           **overrides: Any) -> contextlib.AbstractAsyncContextManager[LiveBroker]:
    """browser_support.live_broker with the clock as a positional argument."""
    return live_broker(data_dir, clock=clock, **overrides)


class Viewer(AiortcPeer):
    """The technician's side in Python: counts frames, keeps the last one, and speaks on
    the control channel. A new offer (not an ICE restart) gets a new connection, as the
    dashboard does: the agent that made it may be a new process."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, sharer=False, **kwargs)
        self.channel: RTCDataChannel | None = None
        self.channel_open = asyncio.Event()
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.last_frame: Any = None

    async def _signal(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "rtc.offer" and self.pc is not None and not frame.get("restart"):
            await self._new_pc()
        await super()._signal(frame)

    async def _new_pc(self) -> None:
        self.channel = None
        self.channel_open.clear()
        await super()._new_pc()
        assert self.pc is not None

        @self.pc.on("datachannel")
        def on_channel(channel: RTCDataChannel) -> None:
            self.channel = channel
            channel.on("message", lambda raw: self.messages.put_nowait(json.loads(raw)))
            if channel.readyState == "open":
                self.channel_open.set()
            channel.on("open", self.channel_open.set)

    async def _count(self, track: Any) -> None:
        with contextlib.suppress(Exception):
            while True:
                self.last_frame = await track.recv()
                self.frames += 1
                if self.first_frame_at is None:
                    self.first_frame_at = asyncio.get_running_loop().time()
                    self.got_frame.set()

    async def control(self, **message: Any) -> None:
        await asyncio.wait_for(self.channel_open.wait(), 15)
        assert self.channel is not None
        self.channel.send(json.dumps(message))

    async def channel_message(self, kind: str, seconds: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(seconds):
            while True:
                message = await self.messages.get()
                if message.get("t") == kind:
                    return message

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        """The (r, g, b) of the last decoded frame at (x, y) of the sender's screen."""
        frame = self.last_frame.reformat(format="rgb24")
        plane = frame.planes[0]
        scale = frame.width / SCREEN[0]
        px, py = int(x * scale), int(y * scale)
        offset = py * plane.line_size + px * 3
        data = bytes(plane)
        return data[offset], data[offset + 1], data[offset + 2]

