"""Connecting, resuming, keeping alive, and errors."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from . import Message, client_message, server_message


class CloseCode(enum.IntEnum):
    """The broker's WebSocket close codes (4000-4999 are the application's own)."""

    REPLACED = 4000  # a newer socket of the same participant took over
    RIGHTS_CHANGED = 4005  # the technician's rights shrank: reconnect to be let in anew
    TOO_SLOW = 4008  # fell too far behind: reconnect and resume from the last seq
    ENDED = 4010  # the session ended
    UNAUTHENTICATED = 4401  # no valid credential (or it was withdrawn)
    FORBIDDEN = 4403  # authenticated, but not (or no longer) in this session

    @property
    def final(self) -> bool:
        """Whether a client should stop reconnecting after this code."""
        return self not in (CloseCode.TOO_SLOW, CloseCode.RIGHTS_CHANGED)


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


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class Welcome(Message):
    """Sent once after a good hello: the session and who you are in it."""

    TYPE = "welcome"
    session: dict[str, Any]
    you: dict[str, Any]


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class EventFrame(Message):
    """One stored event: ``{"seq", "type", "at", "author", ...}`` plus the type's own
    fields (``text`` for a message, ``reason`` for an end) and ``client_id`` if it had one."""

    TYPE = "event"
    event: dict[str, Any]


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class Synced(Message):
    """The replay after hello is complete; live events follow."""

    TYPE = "synced"
    last_seq: int


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class Ping(Message):
    TYPE = "ping"


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class Pong(Message):
    TYPE = "pong"


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class Error(Message):
    """Something the client sent was refused; the connection stays usable unless closed."""

    TYPE = "error"
    code: str
    message: str
    ref: str | None = None


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class SessionUpdate(Message):
    """A session in the technician's list changed (dashboard socket only)."""

    TYPE = "session.update"
    session: dict[str, Any]


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class DeliveryUpdate(Message):
    """A key delivery (SMS or email) changed status (dashboard socket only)."""

    TYPE = "delivery.update"
    delivery: dict[str, Any]


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class Presence(Message):
    """Who is connected to the session right now (sent after the replay and on change)."""

    TYPE = "presence"
    technician: bool
    end_user: bool


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class HandoffUpdate(Message):
    """A transfer to, from or through (a queue of) this technician changed (dashboard
    socket only)."""

    TYPE = "handoff.update"
    handoff: dict[str, Any]


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class WebhookDisabled(Message):
    """A webhook endpoint was disabled after a day of failed deliveries (admins' dashboard
    sockets only): ``{"id", "url", "reason"}``."""

    TYPE = "webhook.disabled"
    webhook: dict[str, Any]
