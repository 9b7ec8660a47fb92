"""The Wayland backend: which desktop API, what it offers, the screen cast as frames, and the
injector whose input session starts with control."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from ..capture import CaptureError, FrameSource
from ..control import Injector
from .desktop import Desktop
from .inject import WaylandInjector

log = logging.getLogger(__name__)

NO_SCREEN = ("This is a Wayland desktop that lets no program see the screen (it has no "
             "screen-cast portal: {why}). Your technician cannot see it. Install "
             "xdg-desktop-portal and your desktop's portal (xdg-desktop-portal-gnome, "
             "-kde or -wlr), or log in with an X11 session.")
VIEW_ONLY = ("This Wayland desktop lets your technician see the screen, but not control "
             "it (its portal offers no remote desktop).")


class WaylandBackend:
    """The screen from a screen cast, input through a remote-desktop session."""

    def __init__(self, api: str, say: Callable[[str], None]) -> None:
        self.api = api   # "portal" or "mutter"
        self._say = say
        self.unavailable = ""
        self._desktop: Desktop | None = None
        self._injector: WaylandInjector | None = None
        self._no_input = ""
        self._closing: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        try:
            if self.api == "mutter":
                from .desktop import MutterDesktop

                self._desktop = await MutterDesktop.connect()
                return "Wayland: the screen is shared through GNOME's compositor (mutter)."
            from .portal import PortalDesktop

            portal = await PortalDesktop.connect()
        except Exception as exc:  # no session bus, no portal, no ScreenCast interface
            log.info("no Wayland screen cast", exc_info=True)
            self.unavailable = NO_SCREEN.format(why=exc)
            return self.unavailable
        self._desktop = portal
        if not portal.remote_version:
            self._no_input = VIEW_ONLY
            return VIEW_ONLY
        # KDE Plasma 5.27 asks nothing before remote control for a program that is not a
        # Flatpak or Snap (seen under kwin_wayland 5.27.5): only the agent's own question.
        return ("Wayland: your desktop will ask you itself which screen to share (some "
                "desktops ask again before remote control).")

    def monitor_text(self, monitor: int) -> str:
        if self.api == "mutter":
            return "the primary monitor"
        return "the screen you choose in your desktop's dialog"

    async def open_source(self, monitor: int, stamp: bool, restore_token: str,
                          on_ended: Callable[[], None] | None = None
                          ) -> tuple[FrameSource, str]:
        from .stream import PipeWireSource, load_gstreamer

        if self._desktop is None:
            raise CaptureError(self.unavailable or "no Wayland screen cast",
                               reason="screen_unavailable")
        await asyncio.to_thread(load_gstreamer)  # before the desktop asks anything
        cast = await self._desktop.screen_cast(restore_token)
        close = cast.close
        watch = None
        if cast.wait_closed is not None and on_ended is not None:
            watch = asyncio.get_running_loop().create_task(_call_after(cast.wait_closed(),
                                                                       on_ended))

        def closed() -> None:
            if watch is not None:
                watch.cancel()   # our own close is no news
            if close is not None:
                task: asyncio.Task[None] = asyncio.get_running_loop().create_task(close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        try:
            source = await PipeWireSource.open(cast, stamp=stamp, on_close=closed)
        except CaptureError:
            closed()
            raise
        return source, cast.restore_token

    def injector(self) -> Injector:
        if self._injector is None:
            self._injector = WaylandInjector(self._desktop if not self._no_input else None,
                                             self._no_input)
        return self._injector

    async def close(self) -> None:
        if self._injector is not None:
            self._injector.close()
        if self._closing:
            await asyncio.wait(self._closing, timeout=5)
        if self._desktop is not None:
            await self._desktop.close()


async def _call_after(waiting: Coroutine[Any, Any, Any], then: Callable[[], None]) -> None:
    await waiting
    log.info("the desktop ended the screen cast")
    then()
