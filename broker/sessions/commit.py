"""One group commit of the session journal (broker/sessions/journal.py says why there is
one writer and how it numbers): the transaction that locks the rows of the batch's
sessions, numbers their events on from the stored sequence numbers, refuses the events the
locked rows forbid, and stores the rest.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import BrokerError, Conflict, NotFound
from ..schema import events, sessions
from . import search
from .model import Event, SessionState, check_transition

_INSERT_EVENTS = events.insert()
# What an appended event comes to: its stored sequence number and whether it was a resend,
# or why it was not stored.
Outcome = BaseException | tuple[int, bool]


@dataclasses.dataclass(slots=True)
class Locked:
    """A session row's state and last sequence number, as the writer holds it."""

    state: SessionState
    last_seq: int


@dataclasses.dataclass(slots=True)
class Pending:
    """An appended event waiting for the writer."""

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


async def lock_sessions(conn: AsyncConnection, ids: list[str]) -> dict[str, Locked]:
    """The sessions' rows, locked (in id order) and read with their last sequence numbers."""
    states = (await conn.execute(
        sa.select(sessions.c.id, sessions.c.state).where(sessions.c.id.in_(ids))
        .order_by(sessions.c.id).with_for_update())).all()
    # A statement of its own, after the locks are held: it sees what the writer that held
    # them before has committed.
    last = {row.session_id: row.seq for row in (await conn.execute(
        sa.select(events.c.session_id, sa.func.max(events.c.seq).label("seq"))
        .where(events.c.session_id.in_(ids))
        .group_by(events.c.session_id))).all()}
    return {row.id: Locked(SessionState(row.state), int(last.get(row.id, 0))) for row in states}


async def stored_client_ids(conn: AsyncConnection, batch: list[Pending]
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


async def number_and_store(conn: AsyncConnection, batch: list[Pending],
                           current: dict[str, Locked], known: dict[tuple[str, str, str], int]
                           ) -> tuple[list[Pending], list[tuple[Pending, Outcome]]]:
    """Number the batch's events on from `current` (which follows them) and store them;
    returns those stored, and the answers to the others (refused, or resends of stored
    events), to be given once the transaction has committed."""
    stored: list[Pending] = []
    outcomes: list[tuple[Pending, Outcome]] = []
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
        refused = refusal(now.state, pending.new_state, pending.allow_ended,
                          pending.allow_waiting)
        if refused is not None:
            outcomes.append((pending, refused))
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
        # Names for history searches; chat lines too, unless SQLite's catch-up reads them.
        messages = conn.dialect.name != "sqlite"
        await search.insert(conn, [text for p in stored for text in search.event_rows(
            p.session_id, p.type, p.data, p.columns, messages=messages)])
        for sid, values in changes.items():
            await conn.execute(sessions.update().where(sessions.c.id == sid)
                               .values(**values))
    return stored, outcomes


def refusal(state: SessionState, new_state: SessionState | None, allow_ended: bool,
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


def _row(pending: Pending) -> dict[str, Any]:
    event = pending.event
    assert event is not None
    return {"session_id": event.session_id, "seq": event.seq, "type": event.type,
            "sender": pending.sender, "client_id": event.client_id, "created_at": event.at,
            "body": json.dumps({"author": event.author, "data": event.data},
                               separators=(",", ":"))}

