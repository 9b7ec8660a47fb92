"""The audit log's storage: appending to the hash chain, checking it, pruning it.

Every append runs in one transaction that first locks the chain's head row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite has a single writer), numbers its records
after the head's `last_id`, links each to the one before, and moves the head on. Writers
on several nodes therefore take turns, and the records have one order with no gaps and no
forks. Verifying reads the records in that order and recomputes every link; the head
row's hash also covers the newest record, which no later record links to.

Pruning deletes the oldest records and appends an anchor record (`audit.pruned`) naming
the last deleted record and its hash, which the oldest remaining record links to: the
rest of the chain stays checkable.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..schema.audit import audit_chain, audit_records
from .model import GENESIS, Action, Entry, Record, Verdict, details_text

HEAD = "head"
_BATCH = 1000


def from_row(row: Any) -> Record:
    return Record(int(row.id), float(row.at), row.actor_kind, row.actor_id, row.actor_name,
                  row.address, row.session_id, row.action, row.details, row.prev_hash)


async def _lock_head(conn: AsyncConnection) -> None:
    """SQLite: take the database's write lock before reading the head. (A transaction
    that reads first and writes later fails when another process wrote meanwhile,
    busy_timeout or not; `supportbroker` commands write beside a running broker.)
    PostgreSQL locks the row itself (FOR UPDATE) when it reads it."""
    if conn.dialect.name == "sqlite":
        await conn.execute(audit_chain.update().where(audit_chain.c.name == HEAD).values(
            last_id=audit_chain.c.last_id))


async def append(conn: AsyncConnection, entries: Sequence[Entry], now: float) -> list[Record]:
    """Number, link and store `entries` in the caller's transaction, in this order."""
    await _lock_head(conn)
    head = (await conn.execute(
        sa.select(audit_chain.c.last_id, audit_chain.c.last_hash)
        .where(audit_chain.c.name == HEAD).with_for_update())).one()
    last_id, last_hash = int(head.last_id), str(head.last_hash)
    made: list[Record] = []
    for entry in entries:
        last_id += 1
        record = Record(last_id, now, entry.actor.kind.value, entry.actor.id, entry.actor.name,
                        entry.address, entry.session_id, entry.action.value,
                        details_text(entry.details), last_hash)
        last_hash = record.digest()
        made.append(record)
    if made:
        await conn.execute(audit_records.insert(), [_values(record) for record in made])
        await conn.execute(audit_chain.update().where(audit_chain.c.name == HEAD).values(
            last_id=last_id, last_hash=last_hash))
    return made


def _values(record: Record) -> dict[str, Any]:
    return {"id": record.id, "at": record.at, "actor_kind": record.actor_kind,
            "actor_id": record.actor_id, "actor_name": record.actor_name,
            "address": record.address, "session_id": record.session_id,
            "action": record.action, "details": record.details,
            "prev_hash": record.prev_hash}


async def prune(conn: AsyncConnection, before: float, now: float,
                anchor: Entry) -> Record | None:
    """Delete the records older than `before` (the oldest ones, in chain order) and append
    `anchor`, with what it needs to check the rest added to its details. None when
    nothing was old enough."""
    # Lock the head first: nobody appends (or prunes) meanwhile.
    await _lock_head(conn)
    await conn.execute(sa.select(audit_chain.c.last_id).where(
        audit_chain.c.name == HEAD).with_for_update())
    through = await conn.scalar(sa.select(sa.func.max(audit_records.c.id)).where(
        audit_records.c.at < before))
    if through is None:
        return None
    row = (await conn.execute(sa.select(audit_records).where(
        audit_records.c.id == through))).one()
    removed = (await conn.execute(audit_records.delete().where(
        audit_records.c.id <= through))).rowcount
    details = {**anchor.details, "through": int(through), "hash": from_row(row).digest(),
               "removed": removed, "before": before}
    made = await append(conn, [Entry(anchor.action, anchor.actor, anchor.address, None,
                                     details)], now)
    return made[0]


async def records(engine: AsyncEngine, *, since: float | None = None,
                  batch: int = _BATCH) -> AsyncIterator[Record]:
    """Every record in chain order (from `since` on), read a batch at a time."""
    after = 0
    while True:
        query = sa.select(audit_records).where(audit_records.c.id > after)
        if since is not None:
            query = query.where(audit_records.c.at >= since)
        async with engine.connect() as conn:
            rows = (await conn.execute(query.order_by(audit_records.c.id).limit(batch))).all()
        for row in rows:
            yield from_row(row)
        if len(rows) < batch:
            return
        after = int(rows[-1].id)


async def _start(engine: AsyncEngine) -> tuple[int, str] | str:
    """The link the oldest record must have: (its id, its prev_hash), from the genesis or
    from the newest anchor; or why there is none."""
    async with engine.connect() as conn:
        first = await conn.scalar(sa.select(sa.func.min(audit_records.c.id)))
        anchors = (await conn.execute(sa.select(audit_records.c.details).where(
            audit_records.c.action == Action.PRUNED.value))).all()
    if first is None or int(first) == 1:
        return 1, GENESIS
    through: list[tuple[int, str]] = []
    for row in anchors:
        try:
            details = json.loads(row.details)
            through.append((int(details["through"]), str(details["hash"])))
        except (ValueError, KeyError, TypeError):
            continue
    if not through:
        return f"records 1 to {int(first) - 1} are missing and no anchor says they were pruned"
    last, digest = max(through)
    return last + 1, digest


async def verify(engine: AsyncEngine) -> Verdict:
    """Walk the chain and name the first record whose link does not hold."""
    start = await _start(engine)
    async with engine.connect() as conn:
        head = (await conn.execute(sa.select(audit_chain).where(
            audit_chain.c.name == HEAD))).one()
    if isinstance(start, str):
        return Verdict(0, 1, start)
    expected_id, expected_hash = start
    checked = 0
    async for record in records(engine):
        if record.id != expected_id:
            if record.id < expected_id:  # before the anchor's first: should be pruned
                return Verdict(checked, record.id,
                               f"record {record.id} is older than the last anchor allows")
            return Verdict(checked, record.id,
                           f"record {expected_id} is missing before record {record.id}")
        if record.prev_hash != expected_hash:
            previous = f"record {record.id - 1}" if record.id > 1 else "the start"
            return Verdict(checked, record.id,
                           f"the link from {previous} to record {record.id} is broken "
                           f"(a record was changed, deleted or moved)")
        checked += 1
        expected_id, expected_hash = record.id + 1, record.digest()
    if int(head.last_id) != expected_id - 1:
        return Verdict(checked, expected_id,
                       f"the chain's head names record {int(head.last_id)}, "
                       f"but the last record is {expected_id - 1}")
    if head.last_hash != expected_hash:
        return Verdict(checked, expected_id - 1,
                       f"record {expected_id - 1} (the newest) was changed")
    return Verdict(checked)
