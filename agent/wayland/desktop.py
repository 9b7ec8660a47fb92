"""What the Wayland backend needs from the desktop, and GNOME's compositor's own API.

Two implementations of `Desktop`:

- `PortalDesktop` (portal.py): the xdg-desktop-portal ScreenCast and RemoteDesktop
  interfaces, the way for every program on GNOME, KDE and any desktop whose portal offers
  them. The desktop asks the person in a dialog of its own; a screen cast may be restored
  later without the dialog (its restore token).
- `MutterDesktop` (here): mutter's `org.gnome.Mutter.ScreenCast` and
  `org.gnome.Mutter.RemoteDesktop`, which the GNOME portal itself uses. No dialog: every
  program on the session bus may use them. The tests use it (a headless mutter has no
  portal dialog to click), and so can a GNOME kiosk without a portal
  (`--wayland-api mutter`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from dbus_fast import Variant

from ..capture import CaptureError
from ..control import InputUnavailable
from .dbus import BusError, SessionBus

MUTTER_CAST = "org.gnome.Mutter.ScreenCast"
MUTTER_REMOTE = "org.gnome.Mutter.RemoteDesktop"
EVENT_SECONDS = 10.0


@dataclasses.dataclass(slots=True)
class Cast:
    """A screen cast the desktop started: its PipeWire node, on the PipeWire remote `fd`
    (the portal's) or the user's default PipeWire daemon (None); its size when known."""

    node_id: int
    fd: int | None = None
    width: int = 0
    height: int = 0
    restore_token: str = ""
    close: Callable[[], Coroutine[Any, Any, None]] | None = None
    # Returns when the desktop ended the cast (the person stopped it in the desktop's
    # own indicator, the compositor went away).
    wait_closed: Callable[[], Coroutine[Any, Any, Any]] | None = None


class InputSession(Protocol):
    """A remote-desktop session: input, in the stream's pixels, fire and forget."""

    def motion(self, x: float, y: float) -> None: ...
    def button(self, code: int, down: bool) -> None: ...
    def axis(self, axis: int, steps: int) -> None: ...
    def keysym(self, keysym: int, down: bool) -> None: ...
    async def close(self) -> None: ...
    async def flush(self) -> None:
        """Until what was sent reached the desktop."""

    async def wait_closed(self) -> None:
        """Returns when the desktop ended the session (not when `close` did)."""


class Desktop(Protocol):
    name: str

    async def screen_cast(self, restore_token: str) -> Cast: ...
    async def remote_desktop(self) -> InputSession: ...
    async def close(self) -> None: ...


class MutterDesktop:
    """GNOME's compositor, directly (no dialog)."""

    name = "GNOME (mutter)"

    def __init__(self, bus: SessionBus) -> None:
        self.bus = bus

    @classmethod
    async def connect(cls, address: str | None = None) -> MutterDesktop:
        bus = await SessionBus.connect(address)
        await bus.subscribe(f"type='signal',interface='{MUTTER_CAST}.Stream'")
        await bus.subscribe("type='signal',member='Closed'")
        return cls(bus)

    async def screen_cast(self, restore_token: str = "") -> Cast:
        try:
            (session,) = await self.bus.call(MUTTER_CAST, "/org/gnome/Mutter/ScreenCast",
                                             MUTTER_CAST, "CreateSession", "a{sv}", {})
            node, _stream = await self._record(session)
        except (BusError, TimeoutError) as exc:
            raise CaptureError(f"GNOME's screen cast failed: {exc}") from exc

        async def close() -> None:
            await self._stop(session, f"{MUTTER_CAST}.Session")

        async def wait_closed() -> None:
            await self.bus.signal(session, "Closed", None)
        return Cast(node, close=close, wait_closed=wait_closed)

    async def _record(self, session: str, start: str | None = None) -> tuple[int, str]:
        """Record the primary monitor (its cursor drawn in); (node id, stream path)."""
        (stream,) = await self.bus.call(MUTTER_CAST, session, f"{MUTTER_CAST}.Session",
                                        "RecordMonitor", "sa{sv}", "",
                                        {"cursor-mode": Variant("u", 1)})
        if start is None:
            await self.bus.call(MUTTER_CAST, session, f"{MUTTER_CAST}.Session", "Start")
        else:
            await self.bus.call(MUTTER_REMOTE, start, f"{MUTTER_REMOTE}.Session", "Start")
        (node,) = await self.bus.signal(stream, "PipeWireStreamAdded", EVENT_SECONDS)
        return int(node), stream

    async def _stop(self, path: str, interface: str) -> None:
        destination = MUTTER_CAST if interface.startswith(MUTTER_CAST) else MUTTER_REMOTE
        try:
            await self.bus.call(destination, path, interface, "Stop")
        except BusError:
            pass  # gone already

    async def remote_desktop(self) -> InputSession:
        try:
            (remote,) = await self.bus.call(MUTTER_REMOTE, "/org/gnome/Mutter/RemoteDesktop",
                                            MUTTER_REMOTE, "CreateSession")
            session_id = await self.bus.get_property(MUTTER_REMOTE, remote,
                                                     f"{MUTTER_REMOTE}.Session", "SessionId")
            (cast,) = await self.bus.call(
                MUTTER_CAST, "/org/gnome/Mutter/ScreenCast", MUTTER_CAST, "CreateSession",
                "a{sv}", {"remote-desktop-session-id": Variant("s", session_id)})
            _node, stream = await self._record(cast, start=remote)
        except (BusError, TimeoutError) as exc:
            raise InputUnavailable(f"GNOME's remote desktop failed: {exc}",
                                   "input_failed") from exc
        return MutterInput(self, remote, stream)

    async def close(self) -> None:
        self.bus.close()


class MutterInput:
    """Input through a mutter remote-desktop session."""

    def __init__(self, desktop: MutterDesktop, path: str, stream: str) -> None:
        self._desktop, self._path, self._stream = desktop, path, stream
        self._interface = f"{MUTTER_REMOTE}.Session"

    def _send(self, member: str, signature: str, *body: object) -> None:
        self._desktop.bus.send(MUTTER_REMOTE, self._path, self._interface, member, signature,
                               *body)

    def motion(self, x: float, y: float) -> None:
        self._send("NotifyPointerMotionAbsolute", "sdd", self._stream, float(x), float(y))

    def button(self, code: int, down: bool) -> None:
        self._send("NotifyPointerButton", "ib", code, down)

    def axis(self, axis: int, steps: int) -> None:
        self._send("NotifyPointerAxisDiscrete", "ui", axis, steps)

    def keysym(self, keysym: int, down: bool) -> None:
        self._send("NotifyKeyboardKeysym", "ub", keysym, down)

    async def close(self) -> None:
        await self._desktop._stop(self._path, self._interface)

    async def flush(self) -> None:
        await self._desktop.bus.call(MUTTER_REMOTE, self._path,
                                     "org.freedesktop.DBus.Peer", "Ping")

    async def wait_closed(self) -> None:
        await self._desktop.bus.signal(self._path, "Closed", None)

