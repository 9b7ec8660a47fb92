"""Chat messages."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import Message, client_message, server_message


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class ChatSend(Message):
    """A chat line. `id` is chosen by the client; a resend with the same id is stored once."""

    TYPE = "chat.send"
    id: str
    text: str


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class ChatAck(Message):
    """The chat line with client id `id` is stored as event `seq`."""

    TYPE = "chat.ack"
    id: str
    seq: int


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class ChatTyping(Message):
    """The sender started (`typing` true) or stopped typing. Relayed to the session's other
    participants as `typing`, at most once a second per sender; never stored. A client
    repeats `true` every few seconds while typing goes on, and says `false` when it stops."""

    TYPE = "chat.typing"
    typing: bool


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class Typing(Message):
    """Another participant (`author`, as in events) is typing now, or stopped."""

    TYPE = "typing"
    author: dict[str, Any]
    typing: bool
