"""What travels between broker nodes, as JSON: the bus's messages (events, signals, session
and delivery updates, handoff notices) and the protocol frames inside signals.

The format describes itself, so nothing about a message's type has to be guessed on the
receiving side: a registered dataclass is ``{"$": name, field: value, ...}``, a registered
enum ``{"$e": name, "v": value}``, a tuple ``{"$t": [...]}``, a protocol frame
``{"$m": {"type": ..., ...}}``; JSON values stand for themselves. Both nodes run the same
code, so an unknown name is a programming error and raises `CodecError`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any

from .delivery.model import Attempt, Channel, Delivery, DeliveryStatus
from .handoff.model import Handoff, HandoffNotice, HandoffState
from .intake.model import (
    AlertLevel,
    Request,
    RequestKind,
    RequestStatus,
    Severity,
    Target,
    TargetAlert,
)
from .protocol import Message, as_dict
from .sessions.model import Event, Session, SessionState, Signal, Takeover
from .supervision.model import WatchersAsked
from .technicians import Ending, TechnicianChanged


class CodecError(ValueError):
    """A bus message that this node cannot read back."""


class Codec:
    """Turns registered dataclasses (and what they hold) into JSON text and back."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Any]] = {}
        self._enums: dict[str, type[enum.Enum]] = {}
        self._frames: dict[str, type[Message]] = {}

    def register(self, *kinds: type[Any]) -> None:
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, enum.Enum):
                self._enums[kind.__name__] = kind
            elif dataclasses.is_dataclass(kind):
                self._classes[kind.__name__] = kind
            else:
                raise TypeError(f"{kind!r} is neither a dataclass nor an enum")

    def dumps(self, value: Any) -> str:
        return json.dumps(self.dump(value), separators=(",", ":"), ensure_ascii=False)

    def loads(self, text: str | bytes) -> Any:
        return self.load(json.loads(text))

    def dump(self, value: Any) -> Any:
        if value is None or isinstance(value, str | int | float | bool) and not isinstance(
                value, enum.Enum):
            return value
        if isinstance(value, Message):
            return {"$m": as_dict(value)}
        if isinstance(value, enum.Enum):
            if type(value).__name__ not in self._enums:
                raise CodecError(f"enum {type(value).__name__} is not registered")
            return {"$e": type(value).__name__, "v": value.value}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            name = type(value).__name__
            if name not in self._classes:
                raise CodecError(f"{name} is not registered")
            out: dict[str, Any] = {"$": name}
            for field in dataclasses.fields(value):
                out[field.name] = self.dump(getattr(value, field.name))
            return out
        if isinstance(value, tuple):
            return {"$t": [self.dump(item) for item in value]}
        if isinstance(value, list):
            return [self.dump(item) for item in value]
        if isinstance(value, dict):
            if any(not isinstance(key, str) or key.startswith("$") for key in value):
                raise CodecError("dictionary keys must be strings not starting with '$'")
            return {key: self.dump(item) for key, item in value.items()}
        raise CodecError(f"cannot encode {type(value).__name__}")

    def load(self, data: Any) -> Any:
        if isinstance(data, list):
            return [self.load(item) for item in data]
        if not isinstance(data, dict):
            return data
        if "$" in data:
            kind = self._classes.get(data["$"])
            if kind is None:
                raise CodecError(f"unknown class {data['$']!r}")
            return kind(**{key: self.load(item) for key, item in data.items() if key != "$"})
        if "$e" in data:
            enum_kind = self._enums.get(data["$e"])
            if enum_kind is None:
                raise CodecError(f"unknown enum {data['$e']!r}")
            return enum_kind(data["v"])
        if "$t" in data:
            return tuple(self.load(item) for item in data["$t"])
        if "$m" in data:
            return self._frame(data["$m"])
        return {key: self.load(item) for key, item in data.items()}

    def _frame(self, data: dict[str, Any]) -> Message:
        kind = self._frames.get(data.get("type", ""))
        if kind is None:
            self._frames = {cls.TYPE: cls for cls in _subclasses(Message) if hasattr(cls, "TYPE")}
            kind = self._frames.get(data.get("type", ""))
        if kind is None:
            raise CodecError(f"unknown frame type {data.get('type')!r}")
        return kind(**{key: value for key, value in data.items() if key != "type"})


def _subclasses(cls: type[Any]) -> list[type[Any]]:
    found: list[type[Any]] = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def broker_codec() -> Codec:
    """The codec for everything the broker publishes on its bus."""
    codec = Codec()
    codec.register(Event, Session, SessionState, Signal, Takeover, Delivery, Attempt, Channel,
                   DeliveryStatus, Handoff, HandoffNotice, HandoffState, TargetAlert, Request,
                   AlertLevel, RequestKind, RequestStatus, Severity, Target,
                   TechnicianChanged, Ending, WatchersAsked)
    return codec
