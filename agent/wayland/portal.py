"""The desktop's own portal (xdg-desktop-portal): ScreenCast for the view, RemoteDesktop for
control. The desktop asks the person in a dialog of its own; a screen cast started with
`persist_mode` 2 comes with a restore token, and the next cast started with that token is
not asked about again (also after a reboot). Remote-desktop sessions cannot be restored
(portal version 1), and the person may leave input off in the dialog: what was granted is
read from the answer. KDE Plasma 5.27 shows no remote-desktop dialog at all to a program
that is not a Flatpak or Snap (its app id is empty): keyboard and pointer come granted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

from dbus_fast import Variant

from ..capture import CaptureError
from ..control import InputUnavailable
from .dbus import BusError, SessionBus
from .desktop import Cast

log = logging.getLogger(__name__)
PORTAL = "org.freedesktop.portal.Desktop"
PATH = "/org/freedesktop/portal/desktop"
CAST = "org.freedesktop.portal.ScreenCast"
REMOTE = "org.freedesktop.portal.RemoteDesktop"
MONITOR, KEYBOARD, POINTER = 1, 1, 2
CURSOR_EMBEDDED = 2
PERSIST_UNTIL_REVOKED = 2
DIALOG_SECONDS = 300.0   # the person reads the desktop's dialog
CANCELLED = 1
SETTLE_SECONDS = 1.0


class PortalRefused(Exception):
    def __init__(self, code: int) -> None:
        super().__init__("cancelled in the desktop's dialog" if code == CANCELLED
                         else f"the portal answered {code}")
        self.code = code


class PortalDesktop:
    """ScreenCast and RemoteDesktop through xdg-desktop-portal."""

    name = "desktop portal"

    def __init__(self, bus: SessionBus, cast_version: int, remote_version: int) -> None:
        self.bus = bus
        self.cast_version = cast_version
        self.remote_version = remote_version   # 0: no RemoteDesktop portal
        self._sender = bus.unique_name.lstrip(":").replace(".", "_")

    @classmethod
    async def connect(cls) -> PortalDesktop:
        """Raises BusError when there is no portal or it has no ScreenCast."""
        bus = await SessionBus.connect()
        try:
            await bus.subscribe("type='signal',interface='org.freedesktop.portal.Request',"
                                "member='Response'")
            await bus.subscribe("type='signal',interface='org.freedesktop.portal.Session',"
                                "member='Closed'")
            cast = int(await bus.get_property(PORTAL, PATH, CAST, "version"))
            try:
                remote = int(await bus.get_property(PORTAL, PATH, REMOTE, "version"))
            except BusError:
                remote = 0
        except BaseException:
            bus.close()
            raise
        return cls(bus, cast, remote)

    async def _request(self, interface: str, method: str, signature: str, *args: Any,
                       wait: float = 30.0) -> dict[str, Any]:
        """A portal request: the call, then its Response signal (code 0 or PortalRefused)."""
        token = "sb" + secrets.token_hex(8)
        path = f"{PATH}/request/{self._sender}/{token}"
        options: dict[str, Variant] = args[-1]
        options["handle_token"] = Variant("s", token)
        await self.bus.call(PORTAL, PATH, interface, method, signature, *args)
        code, results = await self.bus.signal(path, "Response", wait)
        if code != 0:
            raise PortalRefused(int(code))
        return {k: v.value for k, v in results.items()}

    async def _session(self, interface: str) -> str:
        results = await self._request(interface, "CreateSession", "a{sv}", {
            "session_handle_token": Variant("s", "sb" + secrets.token_hex(8))})
        return str(results["session_handle"])

    async def _close_session(self, session: str) -> None:
        try:
            await self.bus.call(PORTAL, session, "org.freedesktop.portal.Session", "Close")
        except BusError:
            pass

    async def _select_monitor(self, session: str, restore_token: str = "",
                              persist: bool = False) -> None:
        options: dict[str, Variant] = {"types": Variant("u", MONITOR),
                                       "multiple": Variant("b", False)}
        try:
            cursors = int(await self.bus.get_property(PORTAL, PATH, CAST,
                                                      "AvailableCursorModes"))
        except BusError:
            cursors = 0
        if cursors & CURSOR_EMBEDDED:
            options["cursor_mode"] = Variant("u", CURSOR_EMBEDDED)
        if persist and self.cast_version >= 4:
            options["persist_mode"] = Variant("u", PERSIST_UNTIL_REVOKED)
            if restore_token:
                options["restore_token"] = Variant("s", restore_token)
        await self._request(CAST, "SelectSources", "oa{sv}", session, options)

    async def screen_cast(self, restore_token: str = "") -> Cast:
        session = ""
        try:
            session = await self._session(CAST)
            await self._select_monitor(session, restore_token, persist=True)
            started = await self._request(CAST, "Start", "osa{sv}", session, "", {},
                                          wait=DIALOG_SECONDS)
            streams = started.get("streams") or []
            if not streams:
                raise CaptureError("the desktop shared no screen", reason="capture_failed")
            node, properties = streams[0]
            width, height = (properties.get("size").value
                             if "size" in properties else (0, 0))
            (fd,) = await self.bus.call(PORTAL, PATH, CAST, "OpenPipeWireRemote", "oa{sv}",
                                        session, {})
        except PortalRefused as exc:
            await self._close_session(session)
            raise CaptureError(f"the screen was not shared: {exc}",
                               reason="desktop_refused") from exc
        except (BusError, TimeoutError) as exc:
            if session:
                await self._close_session(session)
            raise CaptureError(f"the desktop's screen cast failed: {exc}") from exc

        async def close() -> None:
            await self._close_session(session)

        async def wait_closed() -> None:
            await self.bus.signal(session, "Closed", None)
        return Cast(int(node), fd=fd, width=int(width), height=int(height),
                    restore_token=str(started.get("restore_token", "")), close=close,
                    wait_closed=wait_closed)

    async def remote_desktop(self) -> PortalInput:
        if not self.remote_version:
            raise InputUnavailable("this desktop's portal offers no remote control",
                                   "view_only")
        session = ""
        try:
            session = await self._session(REMOTE)
            await self._request(REMOTE, "SelectDevices", "oa{sv}", session,
                                {"types": Variant("u", KEYBOARD | POINTER)})
            await self._select_monitor(session)
            started = await self._request(REMOTE, "Start", "osa{sv}", session, "", {},
                                          wait=DIALOG_SECONDS)
        except PortalRefused as exc:
            await self._close_session(session)
            raise InputUnavailable(f"control was not allowed: {exc}", "input_refused") from exc
        except (BusError, TimeoutError) as exc:
            if session:
                await self._close_session(session)
            raise InputUnavailable(f"the desktop's remote control failed: {exc}",
                                   "input_failed") from exc
        log.info("the desktop's remote desktop answered %s", started)
        devices = int(started.get("devices", 0))
        streams = started.get("streams") or []
        if devices & (KEYBOARD | POINTER) != KEYBOARD | POINTER or not streams:
            await self._close_session(session)
            raise InputUnavailable("the desktop's dialog did not allow remote interaction",
                                   "input_refused")
        # GNOME's portal answers before the desktop takes input: events in the first few
        # hundred milliseconds were lost (measured under headless mutter 43).
        await asyncio.sleep(SETTLE_SECONDS)
        return PortalInput(self.bus, session, int(streams[0][0]))

    async def close(self) -> None:
        self.bus.close()


class PortalInput:
    """Input through a RemoteDesktop portal session.

    xdg-desktop-portal handles each method call on a thread of its own, so calls sent
    without waiting may overtake each other (typed text arrives shuffled): they are sent one
    after another, each after the portal's reply to the one before."""

    def __init__(self, bus: SessionBus, session: str, node: int) -> None:
        self._bus, self._session, self._node = bus, session, node
        self._queue: asyncio.Queue[tuple[str, str, tuple[object, ...]]] = asyncio.Queue()
        self._sender = asyncio.get_running_loop().create_task(self._send_in_order())

    def _send(self, member: str, signature: str, *body: object) -> None:
        self._queue.put_nowait((member, signature, body))

    async def _send_in_order(self) -> None:
        while True:
            member, signature, body = await self._queue.get()
            try:
                await self._bus.call(PORTAL, PATH, REMOTE, member, "oa{sv}" + signature,
                                     self._session, {}, *body)
            except BusError as exc:
                log.info("the portal refused %s: %s", member, exc)
            finally:
                self._queue.task_done()

    def motion(self, x: float, y: float) -> None:
        self._send("NotifyPointerMotionAbsolute", "udd", self._node, float(x), float(y))

    def button(self, code: int, down: bool) -> None:
        self._send("NotifyPointerButton", "iu", code, int(down))

    def axis(self, axis: int, steps: int) -> None:
        self._send("NotifyPointerAxisDiscrete", "ui", axis, steps)

    def keysym(self, keysym: int, down: bool) -> None:
        self._send("NotifyKeyboardKeysym", "iu", keysym, int(down))

    async def flush(self) -> None:
        await self._queue.join()

    async def close(self) -> None:
        """After what was sent (the released keys, too) reached the desktop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await self._queue.join()
        self._sender.cancel()
        try:
            await self._bus.call(PORTAL, self._session, "org.freedesktop.portal.Session",
                                 "Close")
        except BusError:
            pass

    async def wait_closed(self) -> None:
        await self._bus.signal(self._session, "Closed", None)
