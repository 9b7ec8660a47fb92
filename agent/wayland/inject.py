"""The technician's input on Wayland: keysyms, absolute pointer motion on the shared
stream, buttons (evdev codes) and discrete wheel steps, through a remote-desktop session
the desktop opened after the person here allowed control."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ..control import X_KEYSYMS, InputUnavailable
from .desktop import Desktop, InputSession

log = logging.getLogger(__name__)

# The X keysym values of the named keys' keysym names (control.X_KEYSYMS).
KEYSYM_VALUES: dict[str, int] = {
    "Return": 0xFF0D, "Tab": 0xFF09, "BackSpace": 0xFF08, "Escape": 0xFF1B,
    "Delete": 0xFFFF, "Insert": 0xFF63, "Home": 0xFF50, "End": 0xFF57, "Prior": 0xFF55,
    "Next": 0xFF56, "Up": 0xFF52, "Down": 0xFF54, "Left": 0xFF51, "Right": 0xFF53,
    "Shift_L": 0xFFE1, "Control_L": 0xFFE3, "Alt_L": 0xFFE9, "ISO_Level3_Shift": 0xFE03,
    "Super_L": 0xFFEB, "Caps_Lock": 0xFFE5, "space": 0x20, "Menu": 0xFF67,
    **{f"F{n}": 0xFFBE + n - 1 for n in range(1, 13)},
}
WAKE_SECONDS = 0.1
BUTTON_CODES = {"left": 0x110, "right": 0x111, "middle": 0x112}  # BTN_LEFT, ...


def keysym(key: str) -> int:
    """The keysym of a named key or one character (Unicode keysyms past Latin-1)."""
    if key in X_KEYSYMS:
        return KEYSYM_VALUES[X_KEYSYMS[key]]
    code = ord(key)
    return code if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF else 0x01000000 | code


class WaylandInjector:
    """An Injector whose input session is opened when control starts (`open`, after the
    person's consent here, may show the desktop's own dialog) and closed when it ends."""

    def __init__(self, desktop: Desktop | None, unavailable: str = "") -> None:
        self._desktop = desktop
        self._unavailable = unavailable   # why there is no remote desktop at all
        self._session: InputSession | None = None
        self._position = (0, 0)
        self._closing: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None

    async def open(self, on_lost: Callable[[], None] | None = None) -> None:
        """Start an input session; InputUnavailable when the desktop offers or grants none.
        `on_lost` is called when the desktop ends it (its own "stop" indicator)."""
        if self._desktop is None:
            raise InputUnavailable(self._unavailable or "this desktop offers no remote "
                                   "control to programs", "view_only")
        if self._closing is not None:   # the last session's end first
            with contextlib.suppress(Exception):
                await self._closing
        if self._session is None:
            self._session = await self._desktop.remote_desktop()
            # The first key after a virtual keyboard appears is lost unless something was
            # pressed first: a Shift tap wakes it.
            session = self._session
            session.keysym(KEYSYM_VALUES["Shift_L"], True)
            session.keysym(KEYSYM_VALUES["Shift_L"], False)
            await session.flush()
            await asyncio.sleep(WAKE_SECONDS)   # before the technician's first key
            self._watch = asyncio.get_running_loop().create_task(
                self._watch_closed(session, on_lost))

    async def _watch_closed(self, session: InputSession,
                            on_lost: Callable[[], None] | None) -> None:
        await session.wait_closed()
        if self._session is session:
            self._session = None
            log.info("the desktop ended remote control")
            if on_lost is not None:
                on_lost()

    def close(self) -> None:
        """End the input session (after the held keys were let go)."""
        session, self._session = self._session, None
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if session is not None:
            self._closing = asyncio.get_running_loop().create_task(session.close())

    def _live(self) -> InputSession:
        if self._session is None:
            raise RuntimeError("remote control is not on")
        return self._session

    async def aclose(self) -> None:
        """close(), and wait until the desktop took it."""
        self.close()
        if self._closing is not None:
            with contextlib.suppress(Exception):
                await self._closing

    def move(self, x: int, y: int) -> None:
        self._live().motion(x, y)
        self._position = (x, y)

    def button(self, name: str, down: bool) -> None:
        if self._session is None and not down:
            return   # the desktop ended the session: nothing is held any more
        self._live().button(BUTTON_CODES[name], down)

    def scroll(self, dx: int, dy: int) -> None:
        session = self._live()
        if dy:
            session.axis(0, -dy)   # the channel's positive dy is up, Wayland's is down
        if dx:
            session.axis(1, dx)

    def key(self, key: str, down: bool) -> None:
        if self._session is None and not down:
            return
        self._live().keysym(keysym(key), down)

    def position(self) -> tuple[int, int]:
        """Where the technician put the pointer (Wayland does not tell programs)."""
        return self._position
