"""The intake's tables: requests (with their queue entries' states read from handoffs) and
the configuration documents."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..handoff.model import HandoffState
from ..schema import events, handoffs, intake_config, intake_requests, sessions
from ..sessions import SessionState
from .model import Request, RequestKind, Waiting

_R = intake_requests.c
_PENDING = handoffs.c.state == HandoffState.PENDING.value
_WITH_HANDOFF = sa.select(intake_requests, handoffs.c.state.label("handoff_state"),
                          handoffs.c.decided_by).outerjoin(
    handoffs, handoffs.c.id == _R.handoff_id)
_IN_QUEUE = sa.select(_R.id, _R.session_id, _R.participant_id, _R.position).join(
    handoffs, handoffs.c.id == _R.handoff_id).where(
    _R.team_id == sa.bindparam("team_id"), _PENDING).order_by(_R.due_at, _R.created_at, _R.id)
_SET_POSITION = intake_requests.update().where(_R.id == sa.bindparam("rid")).values(
    position=sa.bindparam("pos"))


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(intake_requests.insert().values(
        **{**values, "fields": json.dumps(values["fields"], ensure_ascii=False)}))


async def link(conn: AsyncConnection, request_id: str, handoff_id: str) -> None:
    await conn.execute(intake_requests.update().where(_R.id == request_id).values(
        handoff_id=handoff_id))


async def get(conn: AsyncConnection, request_id: str) -> Request | None:
    row = (await conn.execute(_WITH_HANDOFF.where(_R.id == request_id))).first()
    return None if row is None else Request.from_row(row)


async def by_sessions(conn: AsyncConnection, session_ids: Sequence[str]) -> dict[str, Request]:
    if not session_ids:
        return {}
    rows = (await conn.execute(_WITH_HANDOFF.where(_R.session_id.in_(session_ids)))).all()
    return {row.session_id: Request.from_row(row) for row in rows}


async def listed(conn: AsyncConnection, team_ids: Sequence[int] | None,
                 kind: RequestKind | None, limit: int) -> list[Request]:
    """Newest first; of these teams (None: all)."""
    query = _WITH_HANDOFF.order_by(_R.created_at.desc()).limit(limit)
    if team_ids is not None:
        query = query.where(_R.team_id.in_(team_ids))
    if kind is not None:
        query = query.where(_R.kind == kind.value)
    return [Request.from_row(row) for row in (await conn.execute(query)).all()]


async def in_queue(conn: AsyncConnection, team_id: int) -> list[Waiting]:
    """The team's waiting chats in queue order: by due time, then arrival."""
    rows = (await conn.execute(_IN_QUEUE, {"team_id": team_id})).all()
    return [Waiting(row.id, row.session_id, row.participant_id, row.position) for row in rows]


async def waiting_in(conn: AsyncConnection, team_id: int) -> int:
    """How many chats wait in the team's queue."""
    return int(await conn.scalar(sa.select(sa.func.count()).select_from(intake_requests).join(
        handoffs, handoffs.c.id == _R.handoff_id).where(_R.team_id == team_id, _PENDING)) or 0)


async def ahead_of(conn: AsyncConnection, request: Request) -> int | None:
    """How many of the team's waiting chats come before this one in the queue; None if it
    does not wait. Counted by the database: a customer's question reads no other row."""
    mine = sa.tuple_(_R.due_at, _R.created_at, _R.id) < sa.tuple_(
        sa.literal(request.due_at), sa.literal(request.created_at), sa.literal(request.id))
    waiting = sa.select(sa.func.count()).select_from(intake_requests).join(
        handoffs, handoffs.c.id == _R.handoff_id).where(_R.team_id == request.team_id, _PENDING)
    if not await conn.scalar(waiting.where(_R.id == request.id)):
        return None
    return int(await conn.scalar(waiting.where(mine)) or 0)


async def queued_teams(conn: AsyncConnection) -> list[int]:
    return list((await conn.scalars(sa.select(_R.team_id).distinct().join(
        handoffs, handoffs.c.id == _R.handoff_id).where(_PENDING))).all())


async def set_positions(conn: AsyncConnection, told: list[tuple[str, int]]) -> None:
    if told:
        await conn.execute(_SET_POSITION, [{"rid": rid, "pos": pos} for rid, pos in told])


async def pick_ups(conn: AsyncConnection, team_id: int, since: float) -> list[float]:
    """When sessions were taken from the team's queue since `since`, oldest first."""
    return [float(at) for at in (await conn.scalars(
        sa.select(handoffs.c.decided_at).where(
            handoffs.c.to_team_id == team_id, handoffs.c.decided_at > since,
            handoffs.c.state == HandoffState.ACCEPTED.value)
        .order_by(handoffs.c.decided_at))).all()]


async def close(conn: AsyncConnection, session_id: str, now: float) -> None:
    await conn.execute(intake_requests.update().where(
        _R.session_id == session_id, _R.closed_at.is_(None)).values(closed_at=now))


async def mark(conn: AsyncConnection, request_id: str, **values: float | str | None) -> None:
    await conn.execute(intake_requests.update().where(_R.id == request_id).values(**values))


async def claim(conn: AsyncConnection, request_id: str, technician_id: int, now: float) -> bool:
    """Take an unanswered message to answer it; False if someone else has."""
    result = await conn.execute(intake_requests.update().where(
        _R.id == request_id, _R.kind == RequestKind.MESSAGE.value, _R.answered_at.is_(None))
        .values(answered_at=now, answered_by=technician_id))
    return bool(result.rowcount == 1)


async def tracked(conn: AsyncConnection) -> list[Request]:
    """Requests whose first response has not come yet (chats whose session runs still,
    unanswered messages)."""
    rows = (await conn.execute(_WITH_HANDOFF.where(_R.closed_at.is_(None), sa.or_(
        sa.and_(_R.kind == RequestKind.CHAT.value, _R.first_response_at.is_(None)),
        sa.and_(_R.kind == RequestKind.MESSAGE.value, _R.answered_at.is_(None)))))).all()
    return [Request.from_row(row) for row in rows]


async def first_lines(conn: AsyncConnection, session_ids: Sequence[str]) -> dict[str, float]:
    """When a technician first wrote in each of these sessions (those where one has): a
    chat line whose sender is a technician's ("t<id>", see Actor.sender)."""
    if not session_ids:
        return {}
    rows = (await conn.execute(sa.select(events.c.session_id, sa.func.min(events.c.created_at))
                               .where(events.c.session_id.in_(session_ids),
                                      events.c.type == "message",
                                      events.c.sender.like("t%"))
                               .group_by(events.c.session_id))).all()
    return {session_id: float(at) for session_id, at in rows}


async def unconnected(conn: AsyncConnection, before: float) -> list[tuple[str, str]]:
    """(request, session) of chats in a queue since before `before` whose customer was
    never seen connected, while their session is active (a customer who connected and
    left is in the reconnect window: that ends the session by itself)."""
    rows = (await conn.execute(sa.select(_R.id, _R.session_id)
                               .join(handoffs, handoffs.c.id == _R.handoff_id)
                               .join(sessions, sessions.c.id == _R.session_id)
                               .where(_PENDING, _R.connected_at.is_(None),
                                      _R.created_at <= before,
                                      sessions.c.state == SessionState.ACTIVE.value))).all()
    return [(row.id, row.session_id) for row in rows]


async def config(conn: AsyncConnection, name: str) -> Any:
    value = await conn.scalar(sa.select(intake_config.c.value).where(
        intake_config.c.name == name))
    return None if value is None else json.loads(value)


async def set_config(conn: AsyncConnection, name: str, value: Any, now: float) -> None:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    updated = await conn.execute(intake_config.update().where(
        intake_config.c.name == name).values(value=text, updated_at=now))
    if updated.rowcount == 0:
        await conn.execute(intake_config.insert().values(name=name, value=text, updated_at=now))



async def mark_once(conn: AsyncConnection, request_id: str, column: str, now: float) -> bool:
    """Set `column` (a time) if it is not set yet; False if it was (another node's sweep
    got there first)."""
    result = await conn.execute(intake_requests.update().where(
        _R.id == request_id, intake_requests.c[column].is_(None)).values({column: now}))
    return bool(result.rowcount == 1)
