"""An in-memory `Outbox` (broker/sessions/outbox.py): the twin of web/ws.py's
`SessionConnection` for tests of the session domain without sockets."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from broker.protocol import Message
from broker.protocol.session import CloseCode
from broker.sessions import Actor, Event, Session


@dataclasses.dataclass(frozen=True, slots=True)
class Welcomed:
    """The welcome, as the outbox was handed it."""

    session: Session
    actor: Actor


class MemoryOutbox:
    """Keeps what it is sent, in order. Frames are delivered the moment they are sent, so
    there is always room; `page_size` still sets how a replay pages through the database."""

    def __init__(self, page_size: int = 4) -> None:
        self.page_size = page_size
        self.sent: list[Message | Event | Welcomed] = []
        self.closed_with: tuple[CloseCode, str] | None = None
        self._changed = asyncio.Event()

    @property
    def closing(self) -> bool:
        return self.closed_with is not None

    def send(self, message: Message) -> None:
        self._keep(message)

    def send_welcome(self, session: Session, actor: Actor) -> None:
        self._keep(Welcomed(session, actor))

    def send_event(self, event: Event) -> None:
        self._keep(event)

    def close(self, code: CloseCode, reason: str, *, drop_pending: bool = False) -> None:
        if not self.closing:
            self.closed_with = (code, reason)
            self._changed.set()

    async def wait_for_room(self) -> None:
        pass  # delivered already

    def _keep(self, item: Message | Event | Welcomed) -> None:
        if not self.closing:
            self.sent.append(item)
            self._changed.set()

    # -- for the tests --------------------------------------------------------------------

    def events(self) -> list[Event]:
        return [item for item in self.sent if isinstance(item, Event)]

    def seqs(self) -> list[int]:
        return [event.seq for event in self.events()]

    async def until(self, done: Callable[[MemoryOutbox], bool]) -> None:
        """Wait until `done(self)` holds (whatever the broker still has to send)."""
        async with asyncio.timeout(5):
            while not done(self):
                self._changed.clear()
                await self._changed.wait()
