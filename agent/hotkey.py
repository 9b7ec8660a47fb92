"""The revocation hotkey: one key combination, anywhere on the desktop, ends remote control.

pynput listens to the keyboard on a thread of its own (X11's RECORD extension on Linux, a
low-level hook on Windows, an event tap on macOS; macOS asks for the accessibility
permission the first time). The combination is written as pynput parses it, for example
``<ctrl>+<alt>+<shift>+s`` (the default), and shown to people as ``Ctrl+Alt+Shift+S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
DEFAULT_HOTKEY = "<ctrl>+<alt>+<shift>+s"


def describe(combo: str) -> str:
    """``<ctrl>+<alt>+s`` as people write it: ``Ctrl+Alt+S``."""
    return "+".join(part.strip("<>").capitalize() if part.startswith("<") else part.upper()
                    for part in combo.split("+"))


def check(combo: str) -> None:
    """Raise ValueError if pynput cannot parse the combination."""
    from pynput import keyboard

    keyboard.HotKey.parse(combo)


class Hotkey:
    """Calls `on_press` (on the event loop) whenever the combination is pressed."""

    def __init__(self, combo: str, on_press: Callable[[], None]) -> None:
        self.combo = combo
        self._on_press = on_press
        self._listener: Any = None

    def start(self) -> bool:
        """Start listening; False (and a log line) where no keyboard hook is possible."""
        loop = asyncio.get_running_loop()

        def pressed() -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._on_press)

        try:
            from pynput import keyboard

            self._listener = keyboard.GlobalHotKeys({self.combo: pressed})
            self._listener.start()
            self._listener.wait()
        except Exception as exc:
            log.warning("the hotkey %s is not available here: %s", describe(self.combo), exc)
            self._listener = None
            return False
        return True

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
