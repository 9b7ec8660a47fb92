"""The audit log's one entry point, `AuditService.record`, and what reads the log.

Callers say what was done (an `Action`), to which session, with which details; who did
it and from which address default to what the edge put in the task's context
(broker/audit/context.py), else the broker itself. A record is durable when `record`
returns. Concurrent calls on one node share a transaction (group commit: whoever finds
no write in progress writes everything queued, in the order it was queued).

Failed guesses of keys are many and cheap to make: they are counted per client address
and minute and written as one `key.guesses_failed` record each once the minute is over
(on the next record, the next sweep, or at shutdown). With several nodes each node
counts its own.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ..clock import Clock, isoformat
from . import chain, context
from .acts import journal_acts
from .model import (
    ANONYMOUS,
    SYSTEM,
    Action,
    ActorKind,
    AuditActor,
    Entry,
    Record,
    Verdict,
)
from .query import AuditPage, AuditQuery, page

if TYPE_CHECKING:  # the sessions domain uses this one: no import at run time
    from ..sessions.model import Actor

log = logging.getLogger(__name__)
_PRUNE_EVERY = 3600.0


class AuditService:
    """Appends to the hash-chained audit log and reads it (docs/audit.md)."""

    def __init__(self, engine: AsyncEngine, clock: Clock, *,
                 retention_seconds: float = 0.0) -> None:
        self._engine = engine
        self._clock = clock
        self._retention = retention_seconds
        self._queue: list[tuple[Entry, asyncio.Future[Record]]] = []
        self._writing = False
        self._guesses: Counter[tuple[str, int]] = Counter()
        self._pruned_at = -math.inf

    async def record(self, action: Action, *, session_id: str | None = None,
                     details: dict[str, Any] | None = None, actor: AuditActor | None = None,
                     address: str | None = None) -> Record:
        """Append one record and return it once it is stored. ValueError if `details`
        name a credential (they never go into the log)."""
        entry = Entry(action, actor or context.current_actor() or SYSTEM,
                      address or context.current_address(), session_id, details or {})
        await self.flush_guesses()
        (record,) = await self._append(entry)
        return record

    async def _append(self, *entries: Entry) -> list[Record]:
        """Queue `entries` (stored in one transaction, one after the other) and write
        what is queued unless a write is in progress."""
        loop = asyncio.get_running_loop()
        waiting: list[asyncio.Future[Record]] = []
        for entry in entries:
            done: asyncio.Future[Record] = loop.create_future()
            self._queue.append((entry, done))
            waiting.append(done)
        if not self._writing:
            self._writing = True
            try:
                while self._queue:
                    batch, self._queue = self._queue, []
                    await self._write(batch)
            finally:
                self._writing = False
                for _, left in self._queue:  # the writer was cancelled: nobody writes them
                    if not left.done():
                        left.set_exception(RuntimeError("the audit writer was stopped"))
                self._queue = []
        return [await done for done in waiting]

    async def _write(self, batch: list[tuple[Entry, asyncio.Future[Record]]]) -> None:
        try:
            async with self._engine.begin() as conn:
                made = await chain.append(conn, [entry for entry, _ in batch],
                                          self._clock.now())
        except BaseException as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc if isinstance(exc, Exception)
                                       else RuntimeError("the audit writer was stopped"))
            if not isinstance(exc, Exception):
                raise
            return
        for (_, done), record in zip(batch, made, strict=True):
            if not done.done():
                done.set_result(record)

    # -- what other domains hand in -----------------------------------------------------

    async def journal_stored(self, session_id: str, kind: str, data: dict[str, Any],
                             author: Actor | None) -> None:
        """A session journal's event was stored (for the first time): record the acts it
        is (one transaction for all of them). Never raises: the event is stored, whatever
        becomes of its records."""
        acts = journal_acts(kind, data)
        if not acts:
            return
        actor, address = _actor(author), context.current_address()
        try:
            await self.flush_guesses()
            await self._append(*(Entry(action, actor, address, session_id, details)
                                 for action, details in acts))
        except Exception:
            log.exception("could not record the acts of %s in session %s", kind, session_id)

    def guess_failed(self, address: str | None = None) -> None:
        """A wrong key was typed; counted now, recorded when its minute is over."""
        address = address or context.current_address() or "unknown"
        self._guesses[(address, int(self._clock.now() // 60))] += 1

    async def flush_guesses(self, *, everything: bool = False) -> int:
        """Record the counts of the minutes that are over (`everything`: all of them)."""
        minute = int(self._clock.now() // 60)
        due = sorted(key for key in self._guesses if everything or key[1] < minute)
        for key in due:
            count = self._guesses.pop(key)
            address, at = key
            await self._append(Entry(Action.KEY_GUESSES_FAILED, ANONYMOUS, address, None,
                                     {"minute": isoformat(at * 60), "count": count}))
        return len(due)

    # -- upkeep ---------------------------------------------------------------------------

    async def prune(self, *, force: bool = False) -> Record | None:
        """Delete records older than the retention (none when it is 0) and anchor the
        rest; at most once an hour unless `force`."""
        now = self._clock.now()
        if self._retention <= 0 or (not force and now - self._pruned_at < _PRUNE_EVERY):
            return None
        self._pruned_at = now
        async with self._engine.begin() as conn:
            return await chain.prune(conn, now - self._retention, now, Entry(
                Action.PRUNED, SYSTEM, None, None, {"retention_seconds": self._retention}))

    async def sweep(self) -> None:
        await self.flush_guesses()
        await self.prune()

    async def close(self) -> None:
        await self.flush_guesses(everything=True)

    # -- reading --------------------------------------------------------------------------

    async def page(self, query: AuditQuery) -> AuditPage:
        return await page(self._engine, query)

    def records(self, *, since: float | None = None) -> AsyncIterator[Record]:
        return chain.records(self._engine, since=since)

    async def verify(self) -> Verdict:
        return await chain.verify(self._engine)


def _actor(author: Actor | None) -> AuditActor:
    """A journal event's author; without one, whoever the request is for, if any."""
    if author is not None:
        return AuditActor.of(author.role.value, author.id, author.name)
    actor = context.current_actor()
    return actor if actor is not None and actor.kind is not ActorKind.ANONYMOUS else SYSTEM
