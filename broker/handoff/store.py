"""The handoffs table. A handoff leaves `pending` once, by an UPDATE conditional on its
being pending still: of several answers racing (two receivers, a receiver and the
timeout, the sender and the session's end), exactly one finds it so."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..schema import handoffs, session_technicians, sessions, team_members
from ..sessions import SessionState, search
from .model import Handoff, HandoffState, check_transition

_PENDING = handoffs.c.state == HandoffState.PENDING.value


async def insert(conn: AsyncConnection, handoff: Handoff) -> None:
    await conn.execute(handoffs.insert().values(
        id=handoff.id, session_id=handoff.session_id,
        from_technician_id=handoff.from_technician_id,
        to_technician_id=handoff.to_technician_id, to_team_id=handoff.to_team_id,
        note=handoff.note, keep_sender=handoff.keep_sender, state=handoff.state.value,
        created_at=handoff.created_at, deadline=handoff.deadline))
    await search.add(conn, handoff.session_id, "handoff", handoff.note)  # searchable history


async def get(conn: AsyncConnection, handoff_id: str) -> Handoff | None:
    row = (await conn.execute(sa.select(handoffs).where(handoffs.c.id == handoff_id))).first()
    return None if row is None else Handoff.from_row(row)


async def decide(conn: AsyncConnection, handoff: Handoff, state: HandoffState,
                 by: int | None, reason: str | None, now: float) -> bool:
    """Move a pending handoff on (out of its queue, unless accepted: the receiver then
    takes the session out); False if someone else got there first."""
    check_transition(HandoffState.PENDING, state)
    result = await conn.execute(handoffs.update().where(
        handoffs.c.id == handoff.id, _PENDING).values(
        state=state.value, decided_at=now, decided_by=by, reason=reason))
    if result.rowcount != 1:
        return False
    if handoff.to_team_id is not None and state is not HandoffState.ACCEPTED:
        await conn.execute(sessions.update().where(sessions.c.id == handoff.session_id)
                           .values(queue_team_id=None))
    return True


async def _pending(conn: AsyncConnection, *where: sa.ColumnElement[bool]) -> list[Handoff]:
    rows = (await conn.execute(sa.select(handoffs).where(_PENDING, *where)
                               .order_by(handoffs.c.created_at))).all()
    return [Handoff.from_row(row) for row in rows]


async def pending_in(conn: AsyncConnection, session_id: str) -> list[Handoff]:
    return await _pending(conn, handoffs.c.session_id == session_id)


async def pending_due(conn: AsyncConnection, now: float) -> list[Handoff]:
    """Pending handoffs whose deadline has come."""
    return await _pending(conn, handoffs.c.deadline <= now)


async def pending_for(conn: AsyncConnection, technician_id: int,
                      team_ids: list[int]) -> list[Handoff]:
    """Offered to the technician, or waiting in one of the teams' queues; oldest first."""
    return await _pending(conn, sa.or_(handoffs.c.to_technician_id == technician_id,
                                       handoffs.c.to_team_id.in_(team_ids)))


async def queued(conn: AsyncConnection) -> list[Handoff]:
    """Every session waiting in a team queue, longest waiting first."""
    return await _pending(conn, handoffs.c.to_team_id.is_not(None))


async def offered(conn: AsyncConnection, session_id: str, technician_id: int) -> bool:
    """Whether the session is offered to the technician, directly or in a queue of one of
    their teams."""
    my_teams = sa.select(team_members.c.team_id).where(
        team_members.c.technician_id == technician_id)
    return await conn.scalar(sa.select(handoffs.c.id).where(
        handoffs.c.session_id == session_id, _PENDING,
        sa.or_(handoffs.c.to_technician_id == technician_id,
               handoffs.c.to_team_id.in_(my_teams))).limit(1)) is not None


async def history(conn: AsyncConnection, session_id: str) -> list[Handoff]:
    rows = (await conn.execute(sa.select(handoffs).where(
        handoffs.c.session_id == session_id).order_by(handoffs.c.created_at))).all()
    return [Handoff.from_row(row) for row in rows]


async def join(conn: AsyncConnection, session_id: str, technician_id: int, now: float) -> None:
    """Put a technician into a session as a collaborator (again)."""
    updated = await conn.execute(session_technicians.update().where(
        session_technicians.c.session_id == session_id,
        session_technicians.c.technician_id == technician_id).values(left_at=None,
                                                                      joined_at=now))
    if updated.rowcount == 0:
        await conn.execute(session_technicians.insert().values(
            session_id=session_id, technician_id=technician_id, joined_at=now))


async def move_owner(conn: AsyncConnection, session_id: str, from_id: int, to_id: int,
                     keep_from: bool, now: float) -> bool:
    """Give a live session to `to_id` (no longer a collaborator) if `from_id` still owns
    it; `from_id` stays as a collaborator if `keep_from`. False, and nothing changed, if
    the session ended or changed hands meanwhile (broker/supervision takes sessions over)."""
    moved = await conn.execute(sessions.update().where(
        sessions.c.id == session_id, sessions.c.technician_id == from_id,
        sessions.c.state != SessionState.ENDED.value).values(
        technician_id=to_id, queue_team_id=None))
    if moved.rowcount != 1:
        return False
    await conn.execute(session_technicians.delete().where(
        session_technicians.c.session_id == session_id,
        session_technicians.c.technician_id == to_id))
    if keep_from:
        await join(conn, session_id, from_id, now)
    return True
