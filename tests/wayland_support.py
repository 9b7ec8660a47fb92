"""A Wayland desktop for the agent's tests: GNOME's compositor (mutter) headless, with one
virtual monitor, PipeWire and WirePlumber, in a D-Bus session and a runtime directory of
its own; Wayland test clients (weston's) on it.

The desktop portal's dialog cannot be clicked here, so the agent uses mutter's own
ScreenCast and RemoteDesktop APIs (`--wayland-api mutter`, agent/wayland/desktop.py).
The agent's venv does not see the system's python3-gi: its process gets a directory with
only `gi` in it on PYTHONPATH (as pipx with system site packages would give it more).

Every process started here is ended at the end: the process group, and whatever the bus
activated that still has this desktop's runtime directory in its environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import struct
import tempfile
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from .rtc_support import must_run

PROGRAMS = ("dbus-run-session", "mutter", "pipewire", "wireplumber", "weston-terminal",
            "weston-image")
PORTALS = ("/usr/libexec/xdg-permission-store", "/usr/libexec/xdg-desktop-portal-gnome",
           "/usr/libexec/xdg-desktop-portal")
SYSTEM_GI = Path("/usr/lib/python3/dist-packages/gi")
SCREEN = (1280, 720)
PACKAGES = ("apt-get install mutter pipewire pipewire-bin wireplumber gstreamer1.0-pipewire "
            "gstreamer1.0-plugins-base python3-gi gir1.2-gstreamer-1.0 "
            "gir1.2-gst-plugins-base-1.0 weston dbus xdg-desktop-portal "
            "xdg-desktop-portal-gnome")


def require_wayland() -> None:
    """Skip without the packages, except on CI (where .ci/run installs them)."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    missing += [Path(p).name for p in PORTALS if not Path(p).exists()]
    if not SYSTEM_GI.is_dir():
        missing.append("python3-gi")
    if not Path("/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstpipewire.so").exists() and \
            not list(Path("/usr/lib").glob("*/gstreamer-1.0/libgstpipewire.so")):
        missing.append("gstreamer1.0-pipewire")
    if missing:
        must_run(f"{', '.join(missing)} missing ({PACKAGES})")


class Desktop:
    """The running desktop: the environment its clients (and the agent) get."""

    def __init__(self, runtime: Path, bus: str, wayland: str, gi_path: Path) -> None:
        self.runtime = runtime
        self.size = SCREEN
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime),
                    "DBUS_SESSION_BUS_ADDRESS": bus, "WAYLAND_DISPLAY": wayland,
                    "XDG_SESSION_TYPE": "wayland", "GSETTINGS_BACKEND": "memory",
                    "GIO_USE_VFS": "local", "NO_AT_BRIDGE": "1",
                    "PYTHONPATH": os.pathsep.join(
                        [str(gi_path), *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.env.pop("DISPLAY", None)
        self._clients: list[asyncio.subprocess.Process] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []

    async def start_client(self, *argv: str) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *argv, env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        self._clients.append(process)
        return process

    async def start_portals(self) -> None:
        """GNOME's desktop portal (its dialogs show on this desktop), and the permission
        store where it keeps what restore tokens restore."""
        env = {**self.env, "XDG_CURRENT_DESKTOP": "GNOME", "GDK_BACKEND": "wayland",
               "GTK_A11Y": "none"}
        for program in PORTALS:
            self._clients.append(await asyncio.create_subprocess_exec(
                program, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL))
        await _owned(self.env["DBUS_SESSION_BUS_ADDRESS"], "org.freedesktop.portal.Desktop")

    async def hands(self) -> Any:
        """The person's mouse: a mutter remote-desktop session of the test's own
        (agent/wayland/desktop.py's MutterInput), to click the portal's dialogs."""
        from agent.wayland.desktop import MutterDesktop

        mutter = await MutterDesktop.connect(self.env["DBUS_SESSION_BUS_ADDRESS"])
        self._closers.append(mutter.close)
        return await mutter.remote_desktop()

    async def stop_clients(self) -> None:
        for close in self._closers:
            await close()
        for process in self._clients:
            if process.returncode is None:
                process.kill()
                await process.wait()


# A session bus that activates nothing: no portal (so `--wayland-api portal` finds none),
# and no service started behind the test's back.
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={runtime}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""
SESSION = """
pipewire &
wireplumber &
echo "$DBUS_SESSION_BUS_ADDRESS" > "$XDG_RUNTIME_DIR/bus"
exec mutter --headless --wayland --no-x11 --virtual-monitor {w}x{h} --wayland-display wl-test
"""


@contextlib.asynccontextmanager
async def headless_mutter(size: tuple[int, int] = SCREEN) -> AsyncIterator[Desktop]:
    """mutter, PipeWire and WirePlumber in a private D-Bus session, ready for screen casts."""
    require_wayland()
    with tempfile.TemporaryDirectory(prefix="wl-") as top:
        runtime = Path(top) / "run"
        runtime.mkdir(mode=0o700)
        gi_path = Path(top) / "gi-only"
        gi_path.mkdir()
        (gi_path / "gi").symlink_to(SYSTEM_GI)
        env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "GSETTINGS_BACKEND": "memory",
               "GIO_USE_VFS": "local", "NO_AT_BRIDGE": "1"}
        for name in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
            env.pop(name, None)
        log = os.open(Path(top) / "session.log", os.O_WRONLY | os.O_CREAT, 0o600)
        config = Path(top) / "bus.conf"
        config.write_text(BUS_CONFIG.format(runtime=runtime))
        process = await asyncio.create_subprocess_exec(
            "dbus-run-session", f"--config-file={config}", "--", "sh", "-c",
            SESSION.format(w=size[0], h=size[1]),
            env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True)
        desktop: Desktop | None = None
        try:
            bus = await _ready(runtime, process)
            desktop = Desktop(runtime, bus, "wl-test", gi_path)
            desktop.size = size
            yield desktop
        except BaseException:
            print((Path(top) / "session.log").read_text(errors="replace")[-3000:])
            raise
        finally:
            if desktop is not None:
                await desktop.stop_clients()
            await _end(process, runtime)
            os.close(log)


async def _ready(runtime: Path, process: asyncio.subprocess.Process) -> str:
    """The bus address, once mutter's ScreenCast and PipeWire answer."""
    async with asyncio.timeout(30):
        while not (runtime / "bus").exists() or not (runtime / "bus").read_text().strip() \
                or not (runtime / "pipewire-0").exists() or not (runtime / "wl-test").exists():
            if process.returncode is not None:
                raise AssertionError("the headless desktop did not start")
            await asyncio.sleep(0.05)
        address = (runtime / "bus").read_text().strip()
    await _owned(address, "org.gnome.Mutter.RemoteDesktop")
    return address


async def _owned(address: str, name: str) -> None:
    """Until `name` has an owner on the bus at `address` (at most 30 s)."""
    from dbus_fast import Message
    from dbus_fast.aio import MessageBus

    bus = await MessageBus(bus_address=address).connect()
    try:
        async with asyncio.timeout(30):
            while True:
                reply = await bus.call(Message(
                    destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                    interface="org.freedesktop.DBus", member="NameHasOwner", signature="s",
                    body=[name]))
                if reply is not None and reply.body and reply.body[0]:
                    return
                await asyncio.sleep(0.05)
    finally:
        bus.disconnect()


async def _end(process: asyncio.subprocess.Process, runtime: Path) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 5)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
    for pid in _started_in(runtime):  # what the bus activated, in a session of its own
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _started_in(runtime: Path) -> list[int]:
    """Processes whose environment names this desktop's runtime directory."""
    marker = f"XDG_RUNTIME_DIR={runtime}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def png(path: Path, size: tuple[int, int], rgb: tuple[int, int, int]) -> Path:
    """A one-colour PNG (what the test client shows)."""
    width, height = size
    row = b"\0" + bytes(rgb) * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(
        ">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    return path
