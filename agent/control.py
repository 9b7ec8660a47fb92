"""Remote control: the technician's mouse and keyboard events, checked, limited, injected.

The events arrive on the WebRTC data channel "control" as JSON objects, the viewer's
messages of broker/protocol/channel.py (docs/protocol.md, "The control channel"). Nothing
is injected unless control is granted here: the person at this computer said yes to this
share's control request in this very process, and nobody revoked it since. Every event is
checked before it reaches the input system: coordinates must lie on the shared monitor,
keys must be known ones, buttons left, middle or right, and a token bucket limits how many
arrive per second. Refused events are answered with an ``error`` message and dropped;
nothing half-valid is injected.

Injection goes through the `Injector` seam: `PynputInjector` drives the real input system
(X11's XTest on Linux, SendInput on Windows, Quartz on macOS); `RecordingInjector` is an
in-memory implementation for tests and dry runs.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from broker.errors import ProtocolError
from broker.protocol.channel import (
    BUTTONS,
    Ack,
    ChannelMessage,
    Down,
    Key,
    Move,
    Refused,
    Up,
    Wheel,
    channel_from_dict,
)

from .capture import Monitor

log = logging.getLogger(__name__)

# The pynput `Key` attribute of each named key the channel carries (its NAMED_KEYS).
PYNPUT_KEYS: dict[str, str] = {
    "Enter": "enter", "Tab": "tab", "Backspace": "backspace", "Escape": "esc",
    "Delete": "delete", "Insert": "insert", "Home": "home", "End": "end",
    "PageUp": "page_up", "PageDown": "page_down", "ArrowUp": "up", "ArrowDown": "down",
    "ArrowLeft": "left", "ArrowRight": "right", "Shift": "shift", "Control": "ctrl",
    "Alt": "alt", "AltGraph": "alt_gr", "Meta": "cmd", "CapsLock": "caps_lock",
    " ": "space", "ContextMenu": "menu",
    **{f"F{n}": f"f{n}" for n in range(1, 13)},
}


class InputRefused(ValueError):
    """An event that is not injected; `code` goes back to the technician."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True, slots=True)
class InputEvent:
    """One checked event, in the shared monitor's pixels."""

    kind: str               # move, down, up, wheel, key
    x: int = 0
    y: int = 0
    button: str = ""
    key: str = ""           # a named key (PYNPUT_KEYS) or one character
    down: bool = False
    dx: int = 0
    dy: int = 0


def parse_event(data: dict[str, Any], screen: Monitor) -> InputEvent:
    """Check one message from the technician (a JSON object of the control channel);
    raises InputRefused."""
    try:
        message = channel_from_dict(data)
    except ProtocolError as exc:
        raise InputRefused(exc.code, str(exc)) from exc
    if isinstance(message, Move | Down | Up):
        x, y = int(message.x), int(message.y)
        if not screen.contains(x, y):
            raise InputRefused("outside_screen",
                               f"({x}, {y}) is not on the {screen.width}x{screen.height} screen")
        button = "" if isinstance(message, Move) else message.b
        return InputEvent(message.T, x, y, button=button)
    if isinstance(message, Wheel):
        return InputEvent("wheel", dx=message.dx, dy=message.dy)
    if isinstance(message, Key):
        return InputEvent("key", key=message.k, down=message.down)
    raise InputRefused("bad_event", f"{message.T!r} is not an input event")


class InputUnavailable(Exception):
    """Remote control cannot start here (the desktop refused or offers none); `reason`
    goes to the technician with `control.stop`."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class Injector(Protocol):
    """Where checked events go. Coordinates are absolute (the virtual screen's)."""

    def move(self, x: int, y: int) -> None: ...
    def button(self, name: str, down: bool) -> None: ...
    def scroll(self, dx: int, dy: int) -> None: ...
    def key(self, key: str, down: bool) -> None: ...
    def position(self) -> tuple[int, int]: ...


@runtime_checkable
class SessionInjector(Injector, Protocol):
    """An injector with a session per control (Wayland's remote desktop): opened when
    control starts (InputUnavailable), closed when it ends."""

    async def open(self, on_lost: Callable[[], None] | None = None) -> None: ...
    def close(self) -> None: ...


class PynputInjector:
    """The real input system, through pynput (imported only here: it needs a display)."""

    def __init__(self) -> None:
        from pynput import keyboard, mouse

        self._mouse = mouse.Controller()
        self._keyboard = keyboard.Controller()
        self._buttons = {name: getattr(mouse.Button, name) for name in BUTTONS}
        self._keys = {name: getattr(keyboard.Key, attr) for name, attr in PYNPUT_KEYS.items()
                      if hasattr(keyboard.Key, attr)}
        # On X11, keys go through XTest directly (see XTestKeyboard).
        self._x11 = XTestKeyboard() if type(self._keyboard).__module__.endswith(
            "_xorg") else None

    def move(self, x: int, y: int) -> None:
        self._mouse.position = (x, y)

    def button(self, name: str, down: bool) -> None:
        (self._mouse.press if down else self._mouse.release)(self._buttons[name])

    def scroll(self, dx: int, dy: int) -> None:
        self._mouse.scroll(dx, dy)

    def key(self, key: str, down: bool) -> None:
        if self._x11 is not None:
            self._x11.key(key, down)
            return
        target = self._keys.get(key, key)
        (self._keyboard.press if down else self._keyboard.release)(target)

    def position(self) -> tuple[int, int]:
        x, y = self._mouse.position
        return int(x), int(y)


# The X11 keysym name of each named key, for XTestKeyboard.
X_KEYSYMS: dict[str, str] = {
    "Enter": "Return", "Tab": "Tab", "Backspace": "BackSpace", "Escape": "Escape",
    "Delete": "Delete", "Insert": "Insert", "Home": "Home", "End": "End", "PageUp": "Prior",
    "PageDown": "Next", "ArrowUp": "Up", "ArrowDown": "Down", "ArrowLeft": "Left",
    "ArrowRight": "Right", "Shift": "Shift_L", "Control": "Control_L", "Alt": "Alt_L",
    "AltGraph": "ISO_Level3_Shift", "Meta": "Super_L", "CapsLock": "Caps_Lock", " ": "space",
    "ContextMenu": "Menu", **{f"F{n}": f"F{n}" for n in range(1, 13)},
}


class XTestKeyboard:
    """Keys on X11 through XTest, pressed as a real keyboard would press them.

    pynput types characters with XSendEvent to the focused window: synthetic events, which
    terminals (xterm) and others ignore, and which go nowhere when the focus follows the
    pointer. Here every key is a real key press: the keycode that has the character's
    keysym (with Shift when it is on the shifted level and the technician does not hold
    Shift already), or a spare keycode given that keysym for the purpose, as xdotool does.
    """

    def __init__(self) -> None:
        from Xlib import XK, X, display
        from Xlib.ext import xtest

        self._X, self._XK, self._xtest = X, XK, xtest
        self._display = display.Display()
        self._shift = self._display.keysym_to_keycode(XK.string_to_keysym("Shift_L"))
        self._borrowed: dict[int, int] = {}
        self._shift_held = False

    def key(self, key: str, down: bool) -> None:
        if key == "Shift":
            self._shift_held = down
        if key in X_KEYSYMS:
            keysym = self._XK.string_to_keysym(X_KEYSYMS[key])
        else:
            code = ord(key)
            keysym = code if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF else 0x01000000 | code
        keycode, level = self._keycode(keysym)
        shift = down and level == 1 and not self._shift_held
        if shift:
            self._xtest.fake_input(self._display, self._X.KeyPress, self._shift)
        self._xtest.fake_input(self._display, self._X.KeyPress if down else self._X.KeyRelease,
                               keycode)
        if shift:
            self._xtest.fake_input(self._display, self._X.KeyRelease, self._shift)
        self._display.sync()

    def _keycode(self, keysym: int) -> tuple[int, int]:
        """(keycode, level): level 0 plain, 1 with Shift."""
        found = sorted(self._display.keysym_to_keycodes(keysym), key=lambda pair: pair[1])
        for keycode, index in found:
            if index in (0, 1):
                return keycode, index
        if keysym in self._borrowed:
            return self._borrowed[keysym], 0
        first = self._display.display.info.min_keycode
        last = self._display.display.info.max_keycode
        spare = [code for code in range(last, first - 1, -1)
                 if code not in self._borrowed.values()
                 and not any(self._display.keycode_to_keysym(code, i) for i in range(4))]
        if not spare:  # every keycode is taken: reuse the oldest borrowed one
            keysym_old, code = next(iter(self._borrowed.items()))
            del self._borrowed[keysym_old]
            spare = [code]
        self._display.change_keyboard_mapping(spare[0], [(keysym, keysym)])
        self._display.sync()
        self._borrowed[keysym] = spare[0]
        return spare[0], 0


class RecordingInjector:
    """Records what would be injected; a real Injector for tests and dry runs."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self._position = (0, 0)

    def move(self, x: int, y: int) -> None:
        self._position = (x, y)
        self.events.append(("move", x, y))

    def button(self, name: str, down: bool) -> None:
        self.events.append(("button", name, down))

    def scroll(self, dx: int, dy: int) -> None:
        self.events.append(("scroll", dx, dy))

    def key(self, key: str, down: bool) -> None:
        self.events.append(("key", key, down))

    def position(self) -> tuple[int, int]:
        return self._position


class TokenBucket:
    """`burst` events at once, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: int, now: Callable[[], float] = time.monotonic
                 ) -> None:
        self.rate, self.burst, self._now = rate, burst, now
        self._tokens = float(burst)
        self._at = now()

    def take(self) -> bool:
        now = self._now()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class ControlSession:
    """The technician's input for one share: injected only while granted."""

    def __init__(self, injector: Injector, screen: Monitor, *, rate: float = 250.0,
                 burst: int = 500, now: Callable[[], float] = time.monotonic) -> None:
        self.injector = injector
        self.screen = screen
        self.granted = False
        self._bucket = TokenBucket(rate, burst, now)
        self._held_keys: set[str] = set()
        self._held_buttons: set[str] = set()
        self.injected = 0
        self.refused = 0

    def grant(self) -> None:
        self.granted = True

    @property
    def opens_input(self) -> bool:
        """Control needs an input session first (`open_input`)."""
        return isinstance(self.injector, SessionInjector)

    async def open_input(self, on_lost: Callable[[], None] | None = None) -> None:
        """Open the input session; `on_lost` when the desktop ends it by itself."""
        if isinstance(self.injector, SessionInjector):
            await self.injector.open(on_lost)

    def close_input(self) -> None:
        if isinstance(self.injector, SessionInjector):
            self.injector.close()

    def revoke(self) -> None:
        """Stop at once, and let go of whatever the technician held down."""
        self.granted = False
        for key in list(self._held_keys):
            self._safely(self.injector.key, key, False)
        for button in list(self._held_buttons):
            self._safely(self.injector.button, button, False)
        self._held_keys.clear()
        self._held_buttons.clear()
        self.close_input()

    def handle(self, data: dict[str, Any]) -> ChannelMessage | None:
        """Inject one input message (a JSON object of the control channel); returns the
        answer to send back, if any. Nothing is looked at further while not granted."""
        if not self.granted:
            self.refused += 1
            return _refused("not_granted", "Remote control is not granted.", data)
        if not self._bucket.take():
            self.refused += 1
            return _refused("rate_limited", "Too many input events; some were dropped.", data)
        try:
            event = parse_event(data, self.screen)
        except InputRefused as refused:
            self.refused += 1
            return _refused(refused.code, str(refused), data)
        self._inject(event)
        self.injected += 1
        if isinstance(data.get("n"), int):  # the sender asked to hear when it happened
            return Ack(data["n"], time.time())
        return None

    def _inject(self, event: InputEvent) -> None:
        left, top = self.screen.left, self.screen.top
        if event.kind in ("move", "down", "up"):
            self.injector.move(left + event.x, top + event.y)
            if event.kind != "move":
                self.injector.button(event.button, event.kind == "down")
                (self._held_buttons.add if event.kind == "down"
                 else self._held_buttons.discard)(event.button)
        elif event.kind == "wheel":
            self.injector.scroll(event.dx, event.dy)
        else:
            self.injector.key(event.key, event.down)
            (self._held_keys.add if event.down else self._held_keys.discard)(event.key)

    def cursor(self) -> tuple[int, int] | None:
        """Where the pointer is on the shared monitor, or None when it is elsewhere."""
        x, y = self.injector.position()
        x, y = x - self.screen.left, y - self.screen.top
        return (x, y) if self.screen.contains(x, y) else None

    @staticmethod
    def _safely(call: Callable[..., None], *args: Any) -> None:
        try:
            call(*args)
        except Exception:
            log.exception("could not release %s", args)


def _refused(code: str, message: str, data: dict[str, Any]) -> Refused:
    n = data.get("n")
    return Refused(code, message, n if isinstance(n, int) and not isinstance(n, bool) else None)
