"""The remote-control data channel: messages between the technician's page and the agent.

An agent share's offer carries a reliable, ordered WebRTC data channel named "control"
(docs/protocol.md, "The control channel"). It never passes through the broker: the
technician's page (`web/static/control.js`) and the agent speak it end to end. Each
message is one JSON text object whose tag is ``t`` (not ``type``: the session socket's
frames and these are two protocols). The viewer sends input events and clipboard
requests; the agent sends its screen's size, control changes, the pointer, clipboard text,
acknowledgements and refusals.

`decode_channel` checks what does not depend on the computer (types, buttons, key names,
wheel steps) and raises ProtocolError with the code the agent answers with (``bad_event``,
``unknown_key``); whether a point lies on the shared monitor is the agent's to check.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from typing import Any, ClassVar, TypeVar

from ..errors import ProtocolError
from ..inputs import parse_json
from . import _fields, _matches


class Side(enum.StrEnum):
    """Who sends a channel message."""

    VIEWER = "viewer"   # the technician's page
    AGENT = "agent"     # the agent at the shared computer


class ChannelMessage:
    """Base of every data channel message: a frozen dataclass with a tag `T` and a `SIDE`."""

    T: ClassVar[str]
    SIDE: ClassVar[Side]


CHANNEL: dict[str, type[ChannelMessage]] = {}
C = TypeVar("C", bound=type[ChannelMessage])


def channel_message(cls: C) -> C:
    if cls.T in CHANNEL:
        raise ValueError(f"two channel messages are called {cls.T!r}")
    CHANNEL[cls.T] = cls
    return cls


# KeyboardEvent.key values of the keys that are not characters: the only other keys are
# single printable characters.
NAMED_KEYS: tuple[str, ...] = (
    "Enter", "Tab", "Backspace", "Escape", "Delete", "Insert", "Home", "End", "PageUp",
    "PageDown", "ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Shift", "Control", "Alt",
    "AltGraph", "Meta", "CapsLock", " ", "ContextMenu", *(f"F{n}" for n in range(1, 13)))
BUTTONS = ("left", "middle", "right")
MAX_SCROLL = 20              # wheel steps per event
MAX_COORDINATE = 1_000_000   # beyond any screen: refused before the monitor is looked at
MAX_MESSAGE = 256 * 1024     # characters of one message
UNKNOWN_KEY = {"refused": "unknown_key"}  # a field whose wrong value is an unknown key


def is_key(key: str) -> bool:
    """A key the agent types: a named key or one printable character."""
    return key in NAMED_KEYS or (len(key) == 1 and key.isprintable())


def _coordinate(name: str, value: float) -> None:
    if math.isnan(value) or abs(value) > MAX_COORDINATE:
        raise ValueError(f"{name} is out of range")


# -- from the viewer ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class InputMessage(ChannelMessage):
    """A viewer's message. With `n` (a number) it asks for an `ack` once it happened."""

    SIDE = Side.VIEWER
    n: int | None = dataclasses.field(default=None, kw_only=True)


@dataclasses.dataclass(frozen=True, slots=True)
class _Point(InputMessage):
    x: int | float
    y: int | float

    def __post_init__(self) -> None:
        _coordinate("x", self.x)
        _coordinate("y", self.y)


@channel_message
@dataclasses.dataclass(frozen=True, slots=True)
class Move(_Point):
    """The pointer to (x, y), in pixels of the shared monitor."""

    T = "move"


@dataclasses.dataclass(frozen=True, slots=True)
class _Button(_Point):
    b: str = "left"

    def __post_init__(self) -> None:
        _Point.__post_init__(self)
        if self.b not in BUTTONS:
            raise ValueError("b must be left, middle or right")


@channel_message
@dataclasses.dataclass(frozen=True, slots=True)
class Down(_Button):
    """Button `b` pressed at (x, y)."""

    T = "down"


@channel_message
@dataclasses.dataclass(frozen=True, slots=True)
class Up(_Button):
    """Button `b` released at (x, y)."""

    T = "up"


@channel_message
@dataclasses.dataclass(frozen=True, slots=True)
class Wheel(InputMessage):
    """Scroll by whole steps (positive `dy` is up)."""

    T = "wheel"
    dx: int
    dy: int

    def __post_init__(self) -> None:
        if abs(self.dx) > MAX_SCROLL or abs(self.dy) > MAX_SCROLL:
            raise ValueError(f"at most {MAX_SCROLL} wheel steps at once")


@channel_message
@dataclasses.dataclass(frozen=True, slots=True)
class Key(InputMessage):
    """Key `k` (a KeyboardEvent.key: NAMED_KEYS or one character) pressed or released."""

    T = "key"
    k: str = dataclasses.field(metadata=UNKNOWN_KEY)
    down: bool

    def __post_init__(self) -> None:
        if not is_key(self.k):
            raise ProtocolError(f"{self.k[:20]!r} is not a key the agent types",
                                code="unknown_key")


@channel_message
@dataclasses.dataclass(frozen=True, slots=True)
class ClipboardGet(InputMessage):
    """The agent's clipboard text, please (only under control)."""

    T = "clipboard.get"


@channel_message
@dataclasses.dataclass(frozen=True, slots=True)
class ClipboardSet(InputMessage):
    """Put `text` into the agent's clipboard (only under control)."""

    T = "clipboard.set"
    text: str


# -- from the agent -------------------------------------------------------------------------


@channel_message
@dataclasses.dataclass(frozen=True, slots=True)
class Screen(ChannelMessage):
    """The shared monitor's size: the coordinates of every event (sent on open)."""

    T = "screen"
    SIDE = Side.AGENT
    w: int
    h: int


@channel_message
@dataclasses.dataclass(frozen=True, slots=True)
class Control(ChannelMessage):
    """Control changed here, at once (the control.* event follows through the broker)."""

    T = "control"
    SIDE = Side.AGENT
    granted: bool


@channel_message
@dataclasses.dataclass(frozen=True, slots=True)
class Cursor(ChannelMessage):
    """Where the pointer is on the shared monitor; both null when it is on another one."""

    T = "cursor"
    SIDE = Side.AGENT
    x: int | None
    y: int | None


@channel_message
@dataclasses.dataclass(frozen=True, slots=True)
class Clipboard(ChannelMessage):
    """The answer to clipboard.get."""

    T = "clipboard"
    SIDE = Side.AGENT
    text: str


@channel_message
@dataclasses.dataclass(frozen=True, slots=True)
class ClipboardDone(ChannelMessage):
    """clipboard.set happened."""

    T = "clipboard.done"
    SIDE = Side.AGENT


@channel_message
@dataclasses.dataclass(frozen=True, slots=True)
class Ack(ChannelMessage):
    """The input message numbered `n` was injected at `at` (seconds since the epoch)."""

    T = "ack"
    SIDE = Side.AGENT
    n: int
    at: float


@channel_message
@dataclasses.dataclass(frozen=True, slots=True)
class Refused(ChannelMessage):
    """A message was refused: `code` is not_granted, outside_screen, unknown_key,
    bad_event, rate_limited or clipboard; `n` when the refused message had one."""

    T = "error"
    SIDE = Side.AGENT
    code: str
    message: str
    n: int | None = None


# -- the codec ------------------------------------------------------------------------------


def decode_channel(raw: str | bytes, sender: Side = Side.VIEWER) -> ChannelMessage:
    """One message that `sender` sent; raises ProtocolError (code bad_event or unknown_key)."""
    return channel_from_dict(channel_json(raw), sender)


def channel_json(raw: str | bytes) -> dict[str, Any]:
    """The JSON object of one message, not yet checked against its type (the agent refuses
    input while control is not granted before it looks further); raises ProtocolError."""
    if not isinstance(raw, str):
        raise ProtocolError("text JSON only", code="bad_event")
    if len(raw) > MAX_MESSAGE:
        raise ProtocolError("the message is too large", code="bad_event")
    try:  # nested too deep or no Unicode: refused here, not a crash in the agent
        data = parse_json(raw, ProtocolError)
    except ProtocolError as exc:
        raise ProtocolError(exc.message, code="bad_event") from exc
    if not isinstance(data, dict):
        raise ProtocolError("not JSON", code="bad_event")
    return data


def channel_from_dict(data: dict[str, Any], sender: Side = Side.VIEWER) -> ChannelMessage:
    """A decoded JSON object as the message it is; raises ProtocolError."""
    cls = CHANNEL.get(data.get("t"))  # type: ignore[arg-type]
    if cls is None or cls.SIDE is not sender:
        raise ProtocolError(f"unknown event {str(data.get('t'))[:20]!r}", code="bad_event")
    fields = _fields(cls)
    for name, _, required in fields:
        if required and name not in data:
            raise ProtocolError(f"{cls.T} needs {name}", code="bad_event")
    values: dict[str, Any] = {}
    metadata = {field.name: field.metadata for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for name, hint, _ in fields:
        if name not in data:
            continue
        if not _matches(hint, data[name]):
            code = metadata[name].get("refused", "bad_event")
            raise ProtocolError(f"{cls.T}.{name} has the wrong type", code=code)
        values[name] = data[name]
    try:
        return cls(**values)
    except ValueError as exc:
        raise ProtocolError(str(exc), code="bad_event") from exc


def channel_as_dict(message: ChannelMessage) -> dict[str, Any]:
    """The message as a JSON object; an optional field that is None is left out."""
    data: dict[str, Any] = {"t": message.T}
    for name, _, required in _fields(type(message)):
        value = getattr(message, name)
        if required or value is not None:
            data[name] = value
    return data


def encode_channel(message: ChannelMessage) -> str:
    return json.dumps(channel_as_dict(message), separators=(",", ":"), ensure_ascii=False)
