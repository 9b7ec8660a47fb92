"""The WebSocket protocol: a tagged union of small frozen dataclasses, one module per family.

Every frame is a JSON object whose ``type`` names the message. `decode` turns a client
frame into its dataclass or raises ProtocolError; `encode` does the reverse for any
message. The browser pages and the agent speak exactly these; `docs/protocol.md`
describes them.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, ClassVar, TypeVar, get_type_hints

from ..errors import ProtocolError


class Message:
    """Base of every protocol message. Subclasses are frozen dataclasses with a TYPE."""

    TYPE: ClassVar[str]


_CLIENT: dict[str, type[Message]] = {}
M = TypeVar("M", bound=type[Message])


def client_message(cls: M) -> M:
    """Register a message that clients may send."""
    _CLIENT[cls.TYPE] = cls
    return cls


MAX_FRAME = 64 * 1024


def decode(raw: str | bytes) -> Message:
    if len(raw) > MAX_FRAME:
        raise ProtocolError("The message is too large.", code="frame_too_large")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("The message is not valid JSON.", code="bad_json") from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("A message is a JSON object with a string 'type'.", code="bad_message")
    cls = _CLIENT.get(data["type"])
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


_FIELDS: dict[type[Message], tuple[tuple[str, Any, bool], ...]] = {}


def _fields(cls: type[Message]) -> tuple[tuple[str, Any, bool], ...]:
    """(name, type, required) of each field; worked out once per class, not per frame."""
    found = _FIELDS.get(cls)
    if found is None:
        hints = get_type_hints(cls)
        found = _FIELDS[cls] = tuple(
            (field.name, hints[field.name], field.default is dataclasses.MISSING
             and field.default_factory is dataclasses.MISSING)
            for field in dataclasses.fields(cls))  # type: ignore[arg-type]
    return found


def _check(type_name: str, name: str, hint: Any, value: Any) -> Any:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for kind in allowed:
        if kind is type(None) and value is None:
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind in (str, bool) and isinstance(value, kind):
            return value
        if typing.get_origin(kind) is dict and isinstance(value, dict):
            return value
    raise ProtocolError(f"{type_name}.{name} has the wrong type.", code="bad_message")


def as_dict(message: Message) -> dict[str, Any]:
    """The frame as a JSON object. Shallow: the fields are JSON values already, and
    asdict's deep copy of every event was a quarter of the broker's time per message."""
    data: dict[str, Any] = {"type": message.TYPE}
    for name, _, _ in _fields(type(message)):
        data[name] = getattr(message, name)
    return data


def encode(message: Message) -> str:
    return json.dumps(as_dict(message), separators=(",", ":"), ensure_ascii=False)


# Registered on import, so that `decode` knows every family.
from . import agent, chat, rtc, session  # noqa: E402,F401

__all__ = ["Message", "agent", "as_dict", "chat", "client_message", "decode", "encode", "rtc",
           "session"]
