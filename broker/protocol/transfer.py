"""File transfer frames. Files themselves travel over HTTP (tus uploads, ranged downloads),
never through the socket; the socket only tells the other side how an upload is going."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import Message, server_message


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class FileProgress(Message):
    """An upload in progress, a few times a second, to both participants. Not stored and
    not replayed: the stored events "file.offered", "file.damaged", "file.cancelled" and
    "file.removed" say how it ended."""

    TYPE = "file.progress"
    upload_id: str
    name: str
    size: int
    received: int
    bytes_per_second: int
    sender: dict[str, Any]
