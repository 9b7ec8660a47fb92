"""Chat messages."""

from __future__ import annotations

import dataclasses

from . import Message, client_message


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class ChatSend(Message):
    """A chat line. `id` is chosen by the client; a resend with the same id is stored once."""

    TYPE = "chat.send"
    id: str
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class ChatAck(Message):
    """The chat line with client id `id` is stored as event `seq`."""

    TYPE = "chat.ack"
    id: str
    seq: int
