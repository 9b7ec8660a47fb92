"""The session journal: numbers events, stores them, and only then publishes them.

One writer task commits whatever has queued up while the previous commit ran, so a busy
broker makes few, larger transactions instead of one per message. In each transaction
the database hands out the sequence numbers: the writer locks the rows of the sessions in
the batch (``SELECT ... FOR UPDATE``, in id order), then reads their highest stored
sequence numbers (an index lookup each) and numbers on from there. Every writer takes
the lock before it reads, so several broker nodes can write one session and never number
two events alike, and the checks that must hold when an event is stored
(the session has not ended, a state change is allowed, a client id is new) are made
against the locked row, not against what this node last saw.

Each node keeps a small cache per session (its state, recent client ids) to answer most
questions without the database; with several nodes it is a hint that the writer
corrects. With one node nobody else writes the journal, so the cache is exact and the
writer numbers from it instead of locking and reading: a transaction then only inserts
the events (and changes the session row when an event changes its state).

The transaction of one group commit is broker/sessions/commit.py. With SQLite, the writer
also brings the history search's words and index up to date when the journal is quiet
(broker/sessions/search.py says when, and why not in every batch).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..bus import EventBus
from ..clock import Clock
from ..errors import Conflict, NotFound
from ..metrics import Metrics
from ..protocol.events import check_event
from ..schema import events, sessions
from . import search
from .commit import (
    Locked,
    Outcome,
    Pending,
    lock_sessions,
    number_and_store,
    refusal,
    stored_client_ids,
)
from .model import Actor, Event, SessionState
from .ports import JournalObserver

log = logging.getLogger(__name__)

# Client ids remembered per session for cheap de-duplication of resends; older resends
# are found in the database (several nodes) or by its unique index (one node).
_RECENT_CLIENT_IDS = 32
# PostgreSQL's "deadlock detected" and "serialization failure": the batch is tried again.
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})
_ATTEMPTS = 3


def session_topic(session_id: str) -> str:
    return f"session:{session_id}"


@dataclasses.dataclass(slots=True)
class _Live:
    """What the journal keeps in memory per session it has touched."""

    state: SessionState  # including the changes queued behind the writer
    recent: collections.OrderedDict[tuple[str, str], int]  # (sender, client id) -> seq
    stored: Locked  # as last committed (one node only; unused with several)


class Journal:
    """Append-only, numbered, durable event log per session, with group commit.

    `shared`: other nodes write to the same database, so the cache is only a hint and
    old client ids are looked up before storing (see the module docstring). `observer`
    hears of each event stored for the first time, in the task that appended it.
    """

    def __init__(self, engine: AsyncEngine, bus: EventBus, clock: Clock, metrics: Metrics,
                 *, shared: bool = False, observer: JournalObserver | None = None) -> None:
        self._engine = engine
        self._observer = observer
        self._bus = bus
        self._clock = clock
        self._metrics = metrics
        self._shared = shared
        self._live: dict[str, _Live] = {}
        self._pending: list[Pending] = []
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        # Events SQLite's search may not have read yet (broker/sessions/search.py); at the
        # start whatever the last run left.
        self._indexes = engine.dialect.name == "sqlite"
        self._unread = 1 if self._indexes else 0

    async def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name="journal-writer")

    async def close(self) -> None:
        """Write what is queued, then stop."""
        if self._writer is None:
            return
        await self._idle.wait()
        self._writer.cancel()
        try:
            await self._writer
        except asyncio.CancelledError:
            pass
        self._writer = None

    async def state(self, session_id: str, *, fresh: bool = False) -> SessionState:
        """The session's state. With several nodes another one may have changed it:
        `fresh` reads it from the database (an ended session stays ended)."""
        live = await self._get(session_id)
        if fresh and self._shared and live.state is not SessionState.ENDED:
            live = await self._reload(session_id, refresh=True)
        return live.state

    async def append(self, session_id: str, type: str, data: dict[str, Any], *,
                     author: Actor | None = None, client_id: str | None = None,
                     new_state: SessionState | None = None,
                     columns: dict[str, Any] | None = None,
                     allow_ended: bool = False,
                     allow_waiting: bool = True) -> tuple[int, bool]:
        """Store and publish one event. Returns its sequence number and whether it was a
        resend (stored earlier, not again).

        With `new_state`, the session moves to that state (checked against the transition
        table) in the same transaction; `columns` are further session columns to set.
        Without `allow_waiting`, the event is refused while the session waits for its end
        user (session_waiting). The event's type and `data` must be a kind declared in
        broker/protocol/events.py (ValueError otherwise): the pages rely on it.
        """
        check_event(type, data)
        live = await self._get(session_id)
        sender = author.sender if author is not None else None
        if client_id is not None and sender is not None:
            earlier = live.recent.get((sender, client_id))
            if earlier is not None:
                return earlier, True
        # A quick answer from the cache; the writer checks again against the locked row.
        refused = refusal(live.state, new_state, allow_ended, allow_waiting)
        if refused is not None and self._shared and live.state is not SessionState.ENDED:
            live = await self._reload(session_id, refresh=True)  # another node moved it on?
            refused = refusal(live.state, new_state, allow_ended, allow_waiting)
        if refused is not None:
            raise refused
        if new_state is not None:
            live.state = new_state  # so that what is queued behind it is judged by it
        done: asyncio.Future[tuple[int, bool]] = asyncio.get_running_loop().create_future()
        self._pending.append(Pending(
            session_id, type, self._clock.now(), author.public() if author else None, data,
            client_id, sender, new_state, columns, allow_ended, allow_waiting, done))
        self._idle.clear()
        self._wakeup.set()
        seq, resent = await done
        if not resent and self._observer is not None:
            # Stored: what the observer makes of it must not be lost to a cancelled caller.
            await asyncio.shield(self._observer.journal_stored(session_id, type, data, author))
        return seq, resent

    async def events_after(self, session_id: str, after: int, limit: int = 1000) -> list[Event]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(
                sa.select(events).where(events.c.session_id == session_id, events.c.seq > after)
                .order_by(events.c.seq).limit(limit))).all()
        return [_event_from_row(row) for row in rows]

    async def _get(self, session_id: str) -> _Live:
        live = self._live.get(session_id)
        if live is not None:
            return live
        return await self._reload(session_id)

    async def _reload(self, session_id: str, *, refresh: bool = False) -> _Live:
        """Load a session's cache, or with `refresh` its state again. No lock: from the
        last await to the end nothing else runs, and a load that lost a race to another
        keeps the winner's (newer) cache."""
        async with self._engine.connect() as conn:
            state = await conn.scalar(
                sa.select(sessions.c.state).where(sessions.c.id == session_id))
            if state is None:
                raise NotFound("No such session.")
            # Only one node numbers from its cache; several read the numbers when they write.
            last_seq = 0 if refresh or self._shared else await conn.scalar(
                sa.select(sa.func.coalesce(sa.func.max(events.c.seq), 0))
                .where(events.c.session_id == session_id))
            rows = [] if refresh else (await conn.execute(
                sa.select(events.c.sender, events.c.client_id, events.c.seq)
                .where(events.c.session_id == session_id, events.c.client_id.is_not(None))
                .order_by(events.c.seq.desc()).limit(_RECENT_CLIENT_IDS))).all()
        live = self._live.get(session_id)
        if live is None:
            live = self._live[session_id] = _Live(
                SessionState(state), collections.OrderedDict(
                    ((row.sender, row.client_id), row.seq) for row in reversed(rows)),
                Locked(SessionState(state), int(last_seq or 0)))
        elif refresh:
            live.state = SessionState(state)
        return live

    def seed(self, session_id: str, state: SessionState) -> None:
        """A session this node just created: nothing to load from the database."""
        self._live.setdefault(session_id, _Live(state, collections.OrderedDict(),
                                                Locked(state, 0)))

    def forget(self, session_id: str) -> None:
        """Drop an ended session's cache; it reloads from the database."""
        self._live.pop(session_id, None)

    async def _write_loop(self) -> None:
        while True:
            if self._unread and not await self._woken_within(search.QUIET_SECONDS):
                await self._catch_up()
                continue
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._pending = self._pending, []
            if batch:
                await self._write_batch(batch)
            if not self._pending:
                self._idle.set()

    async def _woken_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._wakeup.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _catch_up(self) -> None:
        """The journal is quiet: SQLite's search reads some of what it has not."""
        try:
            async with self._engine.begin() as conn:
                done = await search.catch_up(conn, search.CATCH_UP_EVENTS)
        except Exception:
            log.exception("could not bring the history search up to date; a search will")
            done = True  # not again before the next event (every search catches up)
        self._unread = 0 if done else max(1, self._unread - search.CATCH_UP_EVENTS)

    async def _write_batch(self, batch: list[Pending]) -> None:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                stored = await self._write(batch)
            except sa.exc.IntegrityError:
                # A resend older than what this node remembers hit the unique client id:
                # write one by one so only that event fails and the rest go through.
                for pending in batch:
                    await self._write_one(pending)
                return
            except sa.exc.DBAPIError as exc:
                if _sqlstate(exc) in _RETRY_SQLSTATES and attempt < _ATTEMPTS:
                    continue  # a deadlock with another node's writer: once more
                self._fail(batch, exc)
                return
            except Exception as exc:
                self._fail(batch, exc)
                return
            self._publish(stored)
            return

    def _fail(self, batch: list[Pending], exc: BaseException) -> None:
        log.exception("could not store %d events", len(batch), exc_info=exc)
        for session_id in {p.session_id for p in batch}:
            self._live.pop(session_id, None)  # reload the true state from the database
        for pending in batch:
            _settle(pending.done, exc)

    async def _write_one(self, pending: Pending) -> None:
        for _ in range(_ATTEMPTS):
            try:
                stored = await self._write([pending])
            except sa.exc.IntegrityError:
                # Stored long ago: answer with the seq it got then, as for a recent resend.
                async with self._engine.connect() as conn:
                    seq = await conn.scalar(sa.select(events.c.seq).where(
                        events.c.session_id == pending.session_id,
                        events.c.sender == pending.sender,
                        events.c.client_id == pending.client_id))
                if seq is None:
                    continue  # another writer took that number (SQLite locks no rows)
                self._remember(pending, int(seq))
                _settle(pending.done, (int(seq), True))
                return
            except Exception as exc:
                self._fail([pending], exc)
                return
            self._publish(stored)
            return
        _settle(pending.done, Conflict("The event could not be stored."))

    async def _write(self, batch: list[Pending]) -> list[Pending]:
        """Number and store the batch in one transaction; returns the pendings stored (the
        others are settled here: refused, or resends of stored events)."""
        ids = sorted({p.session_id for p in batch})
        async with self._engine.begin() as conn:
            current = await self._lock(conn, ids)
            known = await stored_client_ids(conn, batch) if self._shared else {}
            stored, outcomes = await number_and_store(conn, batch, current, known)
            if self._indexes and stored:
                self._unread += len(stored)
                if self._unread > search.CATCH_UP_BACKLOG:  # no quiet for a long while
                    done = await search.catch_up(conn, search.CATCH_UP_EVENTS)
                    self._unread = 0 if done else self._unread - search.CATCH_UP_EVENTS
        # Committed: now the cache, and the answers to those whose events were not stored.
        for session_id, locked in current.items():
            live = self._live.get(session_id)
            if live is not None:
                live.state = locked.state
                live.stored = locked
        for pending, outcome in outcomes:
            if isinstance(outcome, tuple):
                self._remember(pending, outcome[0])
            _settle(pending.done, outcome)
        return stored

    async def _lock(self, conn: AsyncConnection, ids: list[str]) -> dict[str, Locked]:
        """The sessions' rows as this transaction may change them: locked and read (several
        nodes), or copied from the exact cache (one node; read when not cached)."""
        current: dict[str, Locked] = {}
        if not self._shared:
            for session_id in ids:
                live = self._live.get(session_id)
                if live is not None:
                    current[session_id] = Locked(live.stored.state, live.stored.last_seq)
        missing = [session_id for session_id in ids if session_id not in current]
        if missing:
            current.update(await lock_sessions(conn, missing))
        return current

    def _remember(self, pending: Pending, seq: int) -> None:
        live = self._live.get(pending.session_id)
        if live is None or pending.sender is None or pending.client_id is None:
            return
        live.recent[(pending.sender, pending.client_id)] = seq
        live.recent.move_to_end((pending.sender, pending.client_id))
        if len(live.recent) > _RECENT_CLIENT_IDS:
            live.recent.popitem(last=False)

    def _publish(self, stored: list[Pending]) -> None:
        for pending in stored:
            event = pending.event
            assert event is not None
            self._remember(pending, event.seq)
            self._metrics.events.inc()
            self._bus.publish(session_topic(event.session_id), event)
            _settle(pending.done, (event.seq, False))


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def _settle(future: asyncio.Future[tuple[int, bool]], outcome: Outcome) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _event_from_row(row: Any) -> Event:
    body = json.loads(row.body)
    return Event(row.session_id, row.seq, row.type, row.created_at, body["author"],
                 body["data"], row.client_id)
