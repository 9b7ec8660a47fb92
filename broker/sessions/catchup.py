"""One participant's ordered stream of a session's events: what they missed, then live.

Events are numbered, so the rule is simple: send event `last_sent + 1` next. One from
further ahead means others are missing (another node's event still on its way, or lost
while the bus between nodes was down): they are read from the database, while whatever
arrives meanwhile waits in a buffer. The first replay after hello is such a fill; the
bus's resync (it reconnected, or this node's subscription just took effect) starts
another one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final, Protocol

from ..protocol.session import CloseCode, Presence, Synced
from .model import Actor, Event, Role
from .outbox import Outbox
from .service import SessionService

log = logging.getLogger(__name__)

# How long an event that arrived ahead of its predecessor waits for it.
GAP_GRACE_SECONDS: Final = 0.02


class WhoIsHere(Protocol):
    """Who is connected to a session now, as a `presence` frame (AttendanceService)."""

    async def presence(self, session_id: str) -> Presence: ...


class CatchUp:
    """Sends an outbox a session's events with no gap and no repeat (see the module)."""

    __slots__ = ("_outbox", "_sessions", "_session_id", "_actor", "_here", "last_sent",
                 "_filling", "_again", "_buffer", "_task")

    def __init__(self, outbox: Outbox, sessions: SessionService, session_id: str,
                 actor: Actor, after: int, here: WhoIsHere) -> None:
        self._outbox = outbox
        self._sessions = sessions
        self._session_id = session_id
        self._actor = actor
        self._here = here  # told again after a resync: presence signals may have been lost
        self.last_sent = after
        self._filling = True  # live events wait in the buffer until `start` is done
        self._again = False
        self._buffer: list[Event] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self, *, ended: bool) -> None:
        """Send the stored events after `after`, then `synced`; close if the session
        ended (`ended`: it had already)."""
        ended = await self._replay(live=False) or ended
        self._finish_fill(synced=True)
        if ended:
            self._outbox.close(CloseCode.ENDED, "session ended")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def on_event(self, event: Event) -> None:
        """A live event from the bus."""
        if self._filling:
            self._buffer.append(event)
        elif event.seq == self.last_sent + 1:
            self._send(event)
        elif event.seq > self.last_sent:
            self._buffer.append(event)
            self._fill(grace=True)

    def on_resync(self) -> None:
        """The bus may have lost events (and presence frames) for a while."""
        if self._filling:
            self._again = True
        else:
            self._fill(presence=True)

    def _fill(self, *, presence: bool = False, grace: bool = False) -> None:
        self._filling = True
        self._task = asyncio.create_task(self._fill_from_database(presence, grace),
                                         name=f"gap fill {self._session_id}")

    async def _fill_from_database(self, presence: bool, grace: bool) -> None:
        try:
            if grace:
                # Usually the missing event is another node's, a moment behind this one's:
                # give it that moment before asking the database.
                await asyncio.sleep(GAP_GRACE_SECONDS)
            if not (grace and min(e.seq for e in self._buffer) == self.last_sent + 1):
                await self._replay(live=True)
            if presence:
                self._outbox.send(await self._here.presence(self._session_id))
        except Exception:
            log.exception("could not fill a gap in session %s; the client resumes later",
                          self._session_id)
            self._outbox.close(CloseCode.TOO_SLOW, "too slow: reconnect and resume",
                               drop_pending=True)
        self._finish_fill(synced=False)

    async def _replay(self, *, live: bool) -> bool:
        """Send the stored events after `last_sent`, at the client's pace. True if one of
        them ended the session."""
        outbox = self._outbox
        ended = False
        while not outbox.closing:
            page = await self._sessions.events_after(self._session_id, self.last_sent,
                                                     outbox.page_size)
            for event in page:
                if live:
                    self._send(event)
                else:
                    outbox.send_event(event)
                    self.last_sent = event.seq
                ended = ended or event.type == "ended"
            if len(page) < outbox.page_size:
                break
            await outbox.wait_for_room()
        return ended

    def _finish_fill(self, *, synced: bool) -> None:
        """Back to live: what arrived meanwhile goes out in order; a gap starts over."""
        self._filling = False
        buffered, self._buffer = sorted(self._buffer, key=lambda e: e.seq), []
        for index, event in enumerate(buffered):
            if event.seq <= self.last_sent:
                continue
            if event.seq > self.last_sent + 1:
                self._buffer = buffered[index:]
                self._again = True
                break
            self._send(event)
        if synced:
            self._outbox.send(Synced(self.last_sent))
        if self._again and not self._outbox.closing:
            self._again = False
            self._fill(presence=not synced)

    def _send(self, event: Event) -> None:
        self.last_sent = event.seq
        self._outbox.send_event(event)
        if event.type == "ended":
            self._outbox.close(CloseCode.ENDED, "session ended")
        elif _loses_access(event, self._actor):
            self._outbox.close(CloseCode.FORBIDDEN, "no longer in this session")


def _loses_access(event: Event, actor: Actor) -> bool:
    """A technician who handed the session over (without staying) or left it stops
    receiving its events at once."""
    if actor.role is not Role.TECHNICIAN:
        return False
    if event.type == "handed_over":
        return bool(event.data.get("from_id") == actor.id and not event.data.get("stays"))
    return event.type == "technician_left" and event.data.get("id") == actor.id
