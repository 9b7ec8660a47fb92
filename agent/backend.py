"""Where the screen comes from and where input goes, chosen once when the agent starts.

- `DirectBackend`: mss and pynput, on X11, Windows and macOS (as before Wayland).
- `WaylandBackend` (agent/wayland/): a Wayland session (`WAYLAND_DISPLAY` or
  `XDG_SESSION_TYPE=wayland` on Linux), where programs may neither read the screen nor
  inject input: the desktop's portal (ScreenCast, RemoteDesktop) or, with
  `--wayland-api mutter`, GNOME's compositor directly.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Protocol

from .capture import CaptureError, FrameSource, ScreenSource, list_monitors
from .control import Injector, RecordingInjector


class Backend(Protocol):
    # Why the screen cannot be shared at all (said instead of asking), or "".
    unavailable: str

    async def start(self) -> str:
        """Look at what the desktop offers; a line for the person, or ""."""
        ...

    def monitor_text(self, monitor: int) -> str: ...

    async def open_source(self, monitor: int, stamp: bool, restore_token: str,
                          on_ended: Callable[[], None] | None = None
                          ) -> tuple[FrameSource, str]:
        """The screen as frames, and the restore token to keep (or ""); CaptureError.
        `on_ended`: called when the desktop ends the capture by itself."""
        ...

    def injector(self) -> Injector:
        """The input system (may be a WaylandInjector that is opened per control)."""
        ...

    async def close(self) -> None: ...


class DirectBackend:
    """mss captures, pynput (XTest on X11) injects."""

    unavailable = ""

    def __init__(self, injector_factory: Callable[[], Injector],
                 say: Callable[[str], None] = print) -> None:
        self._factory = injector_factory
        self._injector: Injector | None = None
        self._say = say

    async def start(self) -> str:
        return ""

    def monitor_text(self, monitor: int) -> str:
        try:
            m = list_monitors()[monitor]
            return f"monitor {m.index}, {m.width}×{m.height}"
        except (CaptureError, IndexError):
            return f"monitor {monitor}"

    async def open_source(self, monitor: int, stamp: bool, restore_token: str,
                          on_ended: Callable[[], None] | None = None
                          ) -> tuple[FrameSource, str]:
        source = await asyncio.to_thread(ScreenSource, monitor, stamp=stamp)
        return source, ""

    def injector(self) -> Injector:
        if self._injector is None:
            try:
                self._injector = self._factory()
            except Exception as exc:  # no display for input, a missing permission
                self._say(f"Remote control is not possible here: {exc}")
                self._injector = RecordingInjector()
        return self._injector

    async def close(self) -> None:
        return None


def choose_backend(api: str, injector_factory: Callable[[], Injector],
                   say: Callable[[str], None]) -> Backend:
    """The Wayland backend in a Wayland session on Linux (or when `api` names one),
    the direct one elsewhere."""
    from .wayland import wayland_session

    if api in ("portal", "mutter") or (api == "auto" and sys.platform.startswith("linux")
                                       and wayland_session()):
        from .wayland.backend import WaylandBackend

        return WaylandBackend("mutter" if api == "mutter" else "portal", say)
    return DirectBackend(injector_factory, say)
