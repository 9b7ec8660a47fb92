"""The seam between a session and one participant's connection to it."""

from __future__ import annotations

from typing import Protocol

from ..protocol import Message
from ..protocol.session import CloseCode
from .model import Actor, Event, Session


class Outbox(Protocol):
    """Where one participant's frames go, in order: a WebSocket (`SessionConnection` in
    web/ws.py) or, in tests, memory. Sending never waits: an outbox that falls too far
    behind closes itself with TOO_SLOW, and its participant resumes from their last
    sequence number.

    The welcome and the events are handed over as domain objects: the edge knows their
    wire form, and encodes an event once for every socket of its session.
    """

    @property
    def closing(self) -> bool:
        """Closed, or closing after what is queued: sending more does nothing."""
        ...

    @property
    def page_size(self) -> int:
        """How many frames a bulk sender (a long replay) queues before `wait_for_room`."""
        ...

    def send(self, message: Message) -> None: ...

    def send_welcome(self, session: Session, actor: Actor) -> None:
        """The first frame: the session as it is, and who the participant is in it."""
        ...

    def send_event(self, event: Event) -> None: ...

    def close(self, code: CloseCode, reason: str, *, drop_pending: bool = False) -> None:
        """Close after what is queued, or at once with `drop_pending` (the client resumes)."""
        ...

    async def wait_for_room(self) -> None:
        """Until at most `page_size` frames wait (or the outbox is closing)."""
        ...
