"""Connecting, resuming, keeping alive, and errors."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import Message, client_message


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class Hello(Message):
    """The first frame on a socket. `token` is a participant token or an API token (a
    technician's browser is already authenticated by its cookie); `after` is the last
    sequence number the client has seen, and everything after it is replayed."""

    TYPE = "hello"
    token: str | None = None
    after: int = 0

    def __post_init__(self) -> None:
        if self.after < 0:
            raise ValueError("after must be >= 0")


@dataclasses.dataclass(frozen=True, slots=True)
class Welcome(Message):
    """Sent once after a good hello: the session and who you are in it."""

    TYPE = "welcome"
    session: dict[str, Any]
    you: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class EventFrame(Message):
    """One stored event: ``{"seq", "type", "at", "author", ...}`` plus the type's own
    fields (``text`` for a message, ``reason`` for an end) and ``client_id`` if it had one."""

    TYPE = "event"
    event: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Synced(Message):
    """The replay after hello is complete; live events follow."""

    TYPE = "synced"
    last_seq: int


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class Ping(Message):
    TYPE = "ping"


@dataclasses.dataclass(frozen=True, slots=True)
class Pong(Message):
    TYPE = "pong"


@dataclasses.dataclass(frozen=True, slots=True)
class Error(Message):
    """Something the client sent was refused; the connection stays usable unless closed."""

    TYPE = "error"
    code: str
    message: str
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SessionUpdate(Message):
    """A session in the technician's list changed (dashboard socket only)."""

    TYPE = "session.update"
    session: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class DeliveryUpdate(Message):
    """A key delivery (SMS or email) changed status (dashboard socket only)."""

    TYPE = "delivery.update"
    delivery: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Presence(Message):
    """Who is connected to the session right now (sent after the replay and on change)."""

    TYPE = "presence"
    technician: bool
    end_user: bool


@dataclasses.dataclass(frozen=True, slots=True)
class HandoffUpdate(Message):
    """A transfer to, from or through (a queue of) this technician changed (dashboard
    socket only)."""

    TYPE = "handoff.update"
    handoff: dict[str, Any]
