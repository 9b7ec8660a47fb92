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
from ..db import events, sessions
from ..errors import BrokerError, Conflict, NotFound
from ..metrics import Metrics
from .model import Actor, Event, SessionState, check_transition

log = logging.getLogger(__name__)

# Client ids remembered per session for cheap de-duplication of resends; older resends
# are found in the database (several nodes) or by its unique index (one node).
_RECENT_CLIENT_IDS = 32
# PostgreSQL's "deadlock detected" and "serialization failure": the batch is tried again.
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})
_ATTEMPTS = 3
_INSERT_EVENTS = events.insert()


def session_topic(session_id: str) -> str:
    return f"session:{session_id}"


@dataclasses.dataclass(slots=True)
class _Locked:
    """A session row's state and last sequence number, as the writer holds it."""

    state: SessionState
    last_seq: int


@dataclasses.dataclass(slots=True)
class _Live:
    """What the journal keeps in memory per session it has touched."""

    state: SessionState  # including the changes queued behind the writer
    recent: collections.OrderedDict[tuple[str, str], int]  # (sender, client id) -> seq
    stored: _Locked  # as last committed (one node only; unused with several)


@dataclasses.dataclass(slots=True)
class _Pending:
    session_id: str
    type: str
    at: float
    author: dict[str, Any] | None
    data: dict[str, Any]
    client_id: str | None
    sender: str | None
    new_state: SessionState | None
    columns: dict[str, Any] | None
    allow_ended: bool
    allow_waiting: bool
    done: asyncio.Future[tuple[int, bool]]  # (stored seq, was a resend)
    event: Event | None = None  # once numbered

    @property
    def dedup_key(self) -> tuple[str, str, str] | None:
        if self.client_id is None or self.sender is None:
            return None
        return self.session_id, self.sender, self.client_id


class Journal:
    """Append-only, numbered, durable event log per session, with group commit.

    `shared`: other nodes write to the same database, so the cache is only a hint and
    old client ids are looked up before storing (see the module docstring).
    """

    def __init__(self, engine: AsyncEngine, bus: EventBus, clock: Clock, metrics: Metrics,
                 *, shared: bool = False) -> None:
        self._engine = engine
        self._bus = bus
        self._clock = clock
        self._metrics = metrics
        self._shared = shared
        self._live: dict[str, _Live] = {}
        self._pending: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

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
        user (session_waiting).
        """
        live = await self._get(session_id)
        sender = author.sender if author is not None else None
        if client_id is not None and sender is not None:
            earlier = live.recent.get((sender, client_id))
            if earlier is not None:
                return earlier, True
        # A quick answer from the cache; the writer checks again against the locked row.
        refusal = _refusal(live.state, new_state, allow_ended, allow_waiting)
        if refusal is not None and self._shared and live.state is not SessionState.ENDED:
            live = await self._reload(session_id, refresh=True)  # another node moved it on?
            refusal = _refusal(live.state, new_state, allow_ended, allow_waiting)
        if refusal is not None:
            raise refusal
        if new_state is not None:
            live.state = new_state  # so that what is queued behind it is judged by it
        done: asyncio.Future[tuple[int, bool]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(
            session_id, type, self._clock.now(), author.public() if author else None, data,
            client_id, sender, new_state, columns, allow_ended, allow_waiting, done))
        self._idle.clear()
        self._wakeup.set()
        return await done

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
                _Locked(SessionState(state), int(last_seq or 0)))
        elif refresh:
            live.state = SessionState(state)
        return live

    def seed(self, session_id: str, state: SessionState) -> None:
        """A session this node just created: nothing to load from the database."""
        self._live.setdefault(session_id, _Live(state, collections.OrderedDict(),
                                                _Locked(state, 0)))

    def forget(self, session_id: str) -> None:
        """Drop an ended session's cache; it reloads from the database."""
        self._live.pop(session_id, None)

    async def _write_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._pending = self._pending, []
            if batch:
                await self._write_batch(batch)
            if not self._pending:
                self._idle.set()

    async def _write_batch(self, batch: list[_Pending]) -> None:
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

    def _fail(self, batch: list[_Pending], exc: BaseException) -> None:
        log.exception("could not store %d events", len(batch), exc_info=exc)
        for session_id in {p.session_id for p in batch}:
            self._live.pop(session_id, None)  # reload the true state from the database
        for pending in batch:
            _settle(pending.done, exc)

    async def _write_one(self, pending: _Pending) -> None:
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

    async def _write(self, batch: list[_Pending]) -> list[_Pending]:
        """Number and store the batch in one transaction; returns the pendings stored (the
        others are settled here: refused, or resends of stored events)."""
        ids = sorted({p.session_id for p in batch})
        async with self._engine.begin() as conn:
            current = await self._lock(conn, ids)
            known = await self._stored_client_ids(conn, batch) if self._shared else {}
            stored: list[_Pending] = []
            outcomes: list[tuple[_Pending, BaseException | tuple[int, bool]]] = []
            changes: dict[str, dict[str, Any]] = {}
            for pending in batch:
                now = current.get(pending.session_id)
                if now is None:
                    outcomes.append((pending, NotFound("No such session.")))
                    continue
                key = pending.dedup_key
                if key is not None and key in known:
                    outcomes.append((pending, (known[key], True)))
                    continue
                refusal = _refusal(now.state, pending.new_state, pending.allow_ended,
                                   pending.allow_waiting)
                if refusal is not None:
                    outcomes.append((pending, refusal))
                    continue
                now.last_seq += 1
                pending.event = Event(pending.session_id, now.last_seq, pending.type,
                                      pending.at, pending.author, pending.data,
                                      pending.client_id)
                if key is not None:
                    known[key] = now.last_seq
                if pending.new_state is not None or pending.columns:
                    change = changes.setdefault(pending.session_id, {})
                    if pending.new_state is not None:
                        now.state = pending.new_state
                        change["state"] = pending.new_state.value
                    change.update(pending.columns or {})
                stored.append(pending)
            if stored:
                await conn.execute(_INSERT_EVENTS, [_row(p) for p in stored])
                for sid, values in changes.items():
                    await conn.execute(sessions.update().where(sessions.c.id == sid)
                                       .values(**values))
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

    async def _lock(self, conn: AsyncConnection, ids: list[str]) -> dict[str, _Locked]:
        """The sessions' rows as this transaction may change them: locked and read (several
        nodes), or copied from the exact cache (one node; read when not cached)."""
        current: dict[str, _Locked] = {}
        if not self._shared:
            for session_id in ids:
                live = self._live.get(session_id)
                if live is not None:
                    current[session_id] = _Locked(live.stored.state, live.stored.last_seq)
        missing = [session_id for session_id in ids if session_id not in current]
        if missing:
            states = (await conn.execute(
                sa.select(sessions.c.id, sessions.c.state).where(sessions.c.id.in_(missing))
                .order_by(sessions.c.id).with_for_update())).all()
            # A statement of its own, after the locks are held: it sees what the writer
            # that held them before has committed.
            last = {row.session_id: row.seq for row in (await conn.execute(
                sa.select(events.c.session_id, sa.func.max(events.c.seq).label("seq"))
                .where(events.c.session_id.in_(missing))
                .group_by(events.c.session_id))).all()}
            current.update((row.id, _Locked(SessionState(row.state), int(last.get(row.id, 0))))
                           for row in states)
        return current

    async def _stored_client_ids(self, conn: AsyncConnection, batch: list[_Pending]
                                 ) -> dict[tuple[str, str, str], int]:
        """Which of the batch's client ids are stored already (perhaps by another node).
        The session rows are locked, so nobody stores one of them meanwhile."""
        keys = {key for p in batch if (key := p.dedup_key) is not None}
        if not keys:
            return {}
        rows = (await conn.execute(
            sa.select(events.c.session_id, events.c.sender, events.c.client_id, events.c.seq)
            .where(sa.tuple_(events.c.session_id, events.c.sender, events.c.client_id)
                   .in_(sorted(keys))))).all()
        return {(row.session_id, row.sender, row.client_id): int(row.seq) for row in rows}

    def _remember(self, pending: _Pending, seq: int) -> None:
        live = self._live.get(pending.session_id)
        if live is None or pending.sender is None or pending.client_id is None:
            return
        live.recent[(pending.sender, pending.client_id)] = seq
        live.recent.move_to_end((pending.sender, pending.client_id))
        if len(live.recent) > _RECENT_CLIENT_IDS:
            live.recent.popitem(last=False)

    def _publish(self, stored: list[_Pending]) -> None:
        for pending in stored:
            event = pending.event
            assert event is not None
            self._remember(pending, event.seq)
            self._metrics.events.inc()
            self._bus.publish(session_topic(event.session_id), event)
            _settle(pending.done, (event.seq, False))


def _refusal(state: SessionState, new_state: SessionState | None, allow_ended: bool,
             allow_waiting: bool) -> BrokerError | None:
    """Why an event cannot be stored in a session in `state`, or None."""
    if state is SessionState.ENDED and not allow_ended:
        return Conflict("This session has ended.", code="session_ended")
    if state is SessionState.WAITING and not allow_waiting:
        return Conflict("The session has not started.", code="session_waiting")
    if new_state is not None:
        try:
            check_transition(state, new_state)
        except BrokerError as error:
            return error
    return None


def _row(pending: _Pending) -> dict[str, Any]:
    event = pending.event
    assert event is not None
    return {"session_id": event.session_id, "seq": event.seq, "type": event.type,
            "sender": pending.sender, "client_id": event.client_id, "created_at": event.at,
            "body": json.dumps({"author": event.author, "data": event.data},
                               separators=(",", ":"))}


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def _settle(future: asyncio.Future[tuple[int, bool]],
            outcome: BaseException | tuple[int, bool]) -> None:
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
