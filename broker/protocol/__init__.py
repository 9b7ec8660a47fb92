"""The WebSocket protocol: a tagged union of small frozen dataclasses, one module per family.

Every frame is a JSON object whose ``type`` names the message. `decode` turns a client
frame into its dataclass or raises ProtocolError; `encode` does the reverse for any
message. Every frame is registered here as one the clients send or one the broker sends;
the agent imports these classes, the pages get their names from `web/static/protocol.js`
(generated from this package by `python -m broker.protocol.js`), and tests check
`docs/protocol.md` against them. Besides the frames: the stored events' kinds
(`events.py`) and the remote-control data channel between a page and the agent
(`channel.py`).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, ClassVar, TypeVar, get_type_hints

from ..errors import ProtocolError
from ..inputs import MAX_INT, parse_json


class Message:
    """Base of every protocol message. Subclasses are frozen dataclasses with a TYPE."""

    TYPE: ClassVar[str]


CLIENT: dict[str, type[Message]] = {}   # the frames a client may send
SERVER: dict[str, type[Message]] = {}   # the frames the broker sends
M = TypeVar("M", bound=type[Message])


def _register(table: dict[str, type[Message]], cls: M) -> M:
    if cls.TYPE in CLIENT or cls.TYPE in SERVER:
        raise ValueError(f"two frames are called {cls.TYPE!r}")
    table[cls.TYPE] = cls
    return cls


def client_message(cls: M) -> M:
    """Register a message that clients may send."""
    return _register(CLIENT, cls)


def server_message(cls: M) -> M:
    """Register a message that the broker sends."""
    return _register(SERVER, cls)


MAX_FRAME = 64 * 1024


def decode(raw: str | bytes) -> Message:
    """A frame a client sent, as the broker reads it; raises ProtocolError."""
    if len(raw) > MAX_FRAME:
        raise ProtocolError("The message is too large.", code="frame_too_large")
    return _decode(raw, CLIENT)


def decode_from_broker(raw: str | bytes) -> Message:
    """A frame the broker sent, as a client (the agent) reads it: one of the broker's own,
    or a peer's signaling it relays (rtc.offer, rtc.answer, ...); raises ProtocolError
    (`unknown_type` for a frame this version does not know). No size limit of its own: the
    client's socket has one."""
    return _decode(raw, _FROM_BROKER)


def _decode(raw: str | bytes, frames: dict[str, type[Message]]) -> Message:
    data = parse_json(raw, ProtocolError)
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("A message is a JSON object with a string 'type'.", code="bad_message")
    cls = frames.get(data["type"])
    if cls is None:
        raise ProtocolError(f"Unknown message type {data['type'][:40]!r}.", code="unknown_type")
    values: dict[str, Any] = {}
    for name, hint, required in _fields(cls):
        if name in data:
            values[name] = _check(cls.TYPE, name, hint, data[name])
        elif required:
            raise ProtocolError(f"{cls.TYPE} needs the field {name!r}.", code="bad_message")
    try:
        return cls(**values)
    except ValueError as exc:
        raise ProtocolError(f"{cls.TYPE}: {exc}", code="bad_message") from exc


_FIELDS: dict[type[Any], tuple[tuple[str, Any, bool], ...]] = {}


def _fields(cls: type[Any]) -> tuple[tuple[str, Any, bool], ...]:
    """(name, type, required) of each field; worked out once per class, not per frame."""
    found = _FIELDS.get(cls)
    if found is None:
        hints = get_type_hints(cls)
        found = _FIELDS[cls] = tuple(
            (field.name, hints[field.name], field.default is dataclasses.MISSING
             and field.default_factory is dataclasses.MISSING)
            for field in dataclasses.fields(cls))
    return found


def _check(type_name: str, name: str, hint: Any, value: Any) -> Any:
    if _matches(hint, value):
        return value
    raise ProtocolError(f"{type_name}.{name} has the wrong type or is out of range.",
                        code="bad_message")


def _matches(hint: Any, value: Any) -> bool:
    """Whether a JSON value fits a field's type (a bool is not a number here)."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for kind in allowed:
        if kind is type(None) and value is None:
            return True
        if kind in (int, float) and isinstance(value, kind | int) and not isinstance(value, bool):
            # A whole number beyond an integer column names nothing the broker stores.
            return not isinstance(value, int) or -MAX_INT - 1 <= value <= MAX_INT
        if kind in (str, bool) and isinstance(value, kind):
            return True
        if typing.get_origin(kind) is dict and isinstance(value, dict):
            return True
        if typing.get_origin(kind) is list and isinstance(value, list):
            return True
    return False


def as_dict(message: Message) -> dict[str, Any]:
    """The frame as a JSON object. Shallow: the fields are JSON values already, and
    asdict's deep copy of every event was a quarter of the broker's time per message."""
    data: dict[str, Any] = {"type": message.TYPE}
    for name, _, _ in _fields(type(message)):
        data[name] = getattr(message, name)
    return data


def encode(message: Message) -> str:
    return json.dumps(as_dict(message), separators=(",", ":"), ensure_ascii=False)


# Registered on import, so that `decode` (and the generated protocol.js) knows every family.
from . import agent, chat, queue, rtc, session, supervision, transfer  # noqa: E402,F401

# What reaches a client: the broker's frames, and the signaling it relays from the peer.
_FROM_BROKER = {**SERVER, **{cls.TYPE: cls for cls in (*rtc.RELAYED, *supervision.RELAYED)}}

__all__ = ["CLIENT", "SERVER", "Message", "agent", "as_dict", "chat", "client_message", "decode",
           "decode_from_broker", "encode", "queue", "rtc", "server_message", "session",
           "supervision", "transfer"]
