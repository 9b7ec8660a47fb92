"""The dispatcher: turns stored events into stored webhook messages, one per endpoint.

Nothing else in the broker calls it. It reads three tables the broker writes anyway, in
the order their rows were numbered: the journal's `events` (by `gid` on PostgreSQL, the
rowid on SQLite), `delivery_attempts` (by id) and the closing forms' `session_closings`
(by id; a session's closing comes after its end). An event is durable for webhooks the
moment the journal commits it; the dispatcher stores its messages, and the position up
to which everything is done, in one transaction. After a crash it reads on from that
position, and a message it stores again is dropped by the table's unique (endpoint,
event id): each node can run it, and a restart loses and doubles nothing.

Numbers are drawn before commit, so a row can become visible after a higher-numbered one
(two PostgreSQL transactions committing out of order). The tail remembers such gaps and
looks for them again on every read, for `GAP_SECONDS`; the stored position never passes
an open gap. The events of one session never overtake each other: the journal numbers
them under the session row's lock, one transaction after the other.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..clock import Clock
from ..delivery.model import DeliveryStatus
from ..schema import (
    deliveries,
    delivery_attempts,
    events,
    session_closings,
    sessions,
    technicians,
    webhook_cursors,
    webhook_messages,
)
from . import payloads
from .endpoints import EndpointStore
from .model import Endpoint, EventType, MessageStatus

log = logging.getLogger(__name__)

# How long a missing position is waited for: longer than any transaction of the journal.
GAP_SECONDS = 300.0
_BATCH = 500
_MAX_GAP_RUN = 10_000  # a jump this large is no transaction in flight (a reset sequence)
_FAILED_OUTCOMES = (DeliveryStatus.FAILED.value, DeliveryStatus.UNDELIVERED.value)
Row = Any
# An event as a webhook: its id, type, session, when it happened and its data.
Made = tuple[str, EventType, str | None, float, dict[str, Any]]


class Tail:
    """One table, read by a growing position without skipping rows that commit late."""

    def __init__(self, name: str, query: Callable[[AsyncConnection], sa.Select[Any]],
                 position: Callable[[AsyncConnection], sa.ColumnElement[int]]) -> None:
        self.name = name
        self._query = query
        self._position = position
        self._seen: int | None = None  # the highest position read
        self.stored: int | None = None  # the position last stored as done
        self._gaps: dict[int, float] = {}  # missing position -> when first missed

    async def read(self, conn: AsyncConnection) -> list[Row]:
        if self._seen is None:
            self._seen = int(await conn.scalar(sa.select(webhook_cursors.c.position).where(
                webhook_cursors.c.name == self.name)) or 0)
        position = self._position(conn)
        query = self._query(conn)
        rows = list((await conn.execute(query.where(position > self._seen)
                                        .order_by(position).limit(_BATCH))).all())
        late = list((await conn.execute(query.where(position.in_(sorted(self._gaps)))))
                    .all()) if self._gaps else []
        now = time.monotonic()
        for row in late:
            self._gaps.pop(row.position, None)
        for row in rows:
            if row.position - self._seen - 1 <= _MAX_GAP_RUN:
                for missing in range(self._seen + 1, row.position):
                    self._gaps[missing] = now
            self._seen = row.position
        for missing, since in list(self._gaps.items()):
            if now - since > GAP_SECONDS:
                del self._gaps[missing]  # rolled back, never to come
        return sorted(late + rows, key=lambda row: row.position)

    async def skip(self, conn: AsyncConnection) -> None:
        """Count everything stored as read, unread (nobody wants it, see `run_once`)."""
        last = sa.func.coalesce(sa.func.max(self._position(conn)), 0)
        self._seen = int(await conn.scalar(self._query(conn).with_only_columns(
            last, maintain_column_froms=True)) or 0)
        self._gaps.clear()

    @property
    def done_up_to(self) -> int:
        """Every row at or below this position has been read."""
        assert self._seen is not None
        return min(self._gaps) - 1 if self._gaps else self._seen


def _event_position(conn: AsyncConnection) -> sa.ColumnElement[int]:
    if conn.dialect.name == "postgresql":
        return sa.literal_column("events.gid", sa.BigInteger)
    return sa.literal_column("events.rowid", sa.BigInteger)


def _journal_query(conn: AsyncConnection) -> sa.Select[Any]:
    wanted = events.c.type.in_(list(payloads.FROM_JOURNAL))
    return sa.select(_event_position(conn).label("position"), events.c.session_id,
                     events.c.seq, events.c.type, events.c.created_at,
                     sa.case((wanted, events.c.body), else_=sa.null()).label("body"))


def _attempt_query(conn: AsyncConnection) -> sa.Select[Any]:
    return (sa.select(delivery_attempts.c.id.label("position"), delivery_attempts.c.at,
                      delivery_attempts.c.outcome, delivery_attempts.c.detail,
                      delivery_attempts.c.delivery_id, deliveries.c.session_id,
                      deliveries.c.channel, deliveries.c.recipient, deliveries.c.language,
                      deliveries.c.attempts)
            .select_from(delivery_attempts.join(deliveries)))


def _closing_query(conn: AsyncConnection) -> sa.Select[Any]:
    return sa.select(session_closings.c.id.label("position"), session_closings)


class Dispatcher:
    """Reads both sources and stores a message per subscribed endpoint and event."""

    def __init__(self, engine: AsyncEngine, clock: Clock, endpoints: EndpointStore,
                 on_stored: Callable[[], None]) -> None:
        self._engine = engine
        self._clock = clock
        self._endpoints = endpoints
        self._on_stored = on_stored
        self._journal = Tail("events", _journal_query, _event_position)
        self._attempts = Tail("delivery_attempts", _attempt_query,
                              lambda conn: delivery_attempts.c.id)
        self._closings = Tail("session_closings", _closing_query,
                              lambda conn: session_closings.c.id)
        # Whether an endpoint may want what is stored now (False: SQLite found none
        # enabled at the last run, and skips what is stored until one is).
        self.listening = True

    async def run_once(self) -> int:
        """Read what is new; returns how many messages were stored."""
        # The closings are read first and stored last: a session's closing is saved after
        # its end, so the journal read in between holds that end, and `session.ended` is
        # queued before `closing.recorded` however close together they came.
        if await self._skipped():
            return 0
        async with self._engine.connect() as conn:
            closings = await self._closings.read(conn)
        stored = await self._drain(self._journal, self._from_journal)
        stored += await self._drain(self._attempts, self._from_attempts)
        stored += await self._drain(self._closings, self._from_closings, closings)
        if stored:
            self._on_stored()
        return stored

    async def _drain(self, tail: Tail, convert: Callable[[AsyncConnection, list[Row]],
                                                         Awaitable[list[Made]]],
                     rows: list[Row] | None = None) -> int:
        """Store the messages of what `tail` has new (starting with `rows`, read already),
        and how far it is done, a batch per transaction."""
        stored = 0
        while True:
            async with self._engine.begin() as conn:
                if rows is None:
                    rows = await tail.read(conn)
                made = await convert(conn, rows) if rows else []
                stored += await self._store(conn, made)
                await self._advance(conn, tail)
            tail.stored = tail.done_up_to
            if len(rows) < _BATCH:
                return stored
            rows = None

    async def _skipped(self) -> bool:
        """SQLite with no endpoint enabled: count everything stored as done, unread (saves
        reading every chat line). Nobody wants it: an endpoint enabled later gets what
        happens after that; and with one writer, no row commits after one numbered
        higher."""
        if self._engine.dialect.name != "sqlite":
            return False
        tails = (self._journal, self._attempts, self._closings)
        async with self._engine.begin() as conn:
            self.listening = bool(await self._endpoints.enabled(conn))
            if self.listening:
                return False
            for tail in tails:
                await tail.skip(conn)
                await self._advance(conn, tail)
        for tail in tails:
            tail.stored = tail.done_up_to
        return True

    async def _advance(self, conn: AsyncConnection, tail: Tail) -> None:
        """Store how far `tail` is done, in `conn`'s transaction."""
        if tail.done_up_to != tail.stored:
            await conn.execute(webhook_cursors.update().where(
                webhook_cursors.c.name == tail.name,
                webhook_cursors.c.position < tail.done_up_to).values(
                position=tail.done_up_to, updated_at=self._clock.now()))

    async def _from_journal(self, conn: AsyncConnection, rows: list[Row]) -> list[Made]:
        wanted = [row for row in rows if row.body is not None]
        facts = await _sessions(conn, {row.session_id for row in wanted})
        made: list[Made] = []
        for row in wanted:
            stored = json.loads(row.body)
            event_type = payloads.FROM_JOURNAL[row.type]
            data = payloads.journal_data(row.type, facts[row.session_id], stored["author"],
                                         stored["data"])
            made.append((payloads.journal_event_id(row.session_id, row.seq), event_type,
                         row.session_id, row.created_at, data))
        return made

    async def _from_attempts(self, conn: AsyncConnection, rows: list[Row]) -> list[Made]:
        failed = [row for row in rows if row.outcome in _FAILED_OUTCOMES]
        facts = await _sessions(conn, {row.session_id for row in failed if row.session_id})
        return [(f"evt_delivery_{row.position}", EventType.DELIVERY_FAILED, row.session_id,
                 row.at, payloads.delivery_failed_data(row, facts.get(row.session_id)))
                for row in failed]

    async def _from_closings(self, conn: AsyncConnection, rows: list[Row]) -> list[Made]:
        facts = await _sessions(conn, {row.session_id for row in rows})
        return [(f"evt_closing_{row.position}", EventType.CLOSING_RECORDED, row.session_id,
                 row.recorded_at, payloads.closing_data(row, facts[row.session_id]))
                for row in rows if row.session_id in facts]

    async def _store(self, conn: AsyncConnection, made: list[Made]) -> int:
        if not made:
            return 0
        # Read after the events: an endpoint registered before an event happened is seen.
        endpoints = await self._endpoints.enabled(conn)
        now = self._clock.now()
        values = [_message(endpoint, event_id, event_type, session_id, payloads.body(
            event_id, event_type, at, data), now)
            for event_id, event_type, session_id, at, data in made
            for endpoint in endpoints if _wants(endpoint, event_type, at)]
        if not values:
            return 0
        insert = (postgresql.insert(webhook_messages) if conn.dialect.name == "postgresql"
                  else sqlite.insert(webhook_messages))
        await conn.execute(insert.on_conflict_do_nothing(), values)
        return len(values)


def _wants(endpoint: Endpoint, event_type: EventType, at: float) -> bool:
    """An endpoint gets the events it subscribes to that happened since it was made or
    last enabled (none of those while it was disabled)."""
    return endpoint.wants(event_type) and at >= endpoint.active_since


def _message(endpoint: Endpoint, event_id: str, event_type: str, session_id: str | None,
             text: str, now: float) -> dict[str, Any]:
    return {"endpoint_id": endpoint.id, "event_id": event_id, "event_type": event_type,
            "session_id": session_id, "queue": session_id or event_id, "body": text,
            "status": MessageStatus.PENDING.value, "attempts": 0, "next_attempt_at": now,
            "created_at": now, "updated_at": now}


async def _sessions(conn: AsyncConnection, ids: set[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    rows = (await conn.execute(
        sa.select(sessions.c.id, sessions.c.technician_id, sessions.c.end_user_name,
                  sessions.c.created_at, sessions.c.started_at, sessions.c.ended_at,
                  sessions.c.end_reason, technicians.c.display_name, technicians.c.email)
        .select_from(sessions.outerjoin(technicians))
        .where(sessions.c.id.in_(sorted(ids))))).all()
    return {row.id: payloads.session_facts(row) for row in rows}
