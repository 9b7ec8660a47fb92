"""The sessions table as the session service reads and starts it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..schema import (
    participants,
    session_members,
    session_technicians,
    sessions,
    support_keys,
    technicians,
)
from .model import Session, SessionState


def session_query() -> sa.Select[Any]:
    return sa.select(
        sessions, technicians.c.display_name.label("technician_name"),
        support_keys.c.expires_at.label("key_expires_at"),
    ).outerjoin(technicians, technicians.c.id == sessions.c.technician_id).outerjoin(
        support_keys, support_keys.c.session_id == sessions.c.id)


# The statements of every request's path, built once: SQLAlchemy then neither builds them
# nor computes their cache keys again each time.
_SESSION_BY_ID = session_query().where(sessions.c.id == sa.bindparam("session_id"))
_COLLABORATORS = sa.select(session_technicians).where(
    session_technicians.c.session_id.in_(sa.bindparam("ids", expanding=True)),
    session_technicians.c.left_at.is_(None)).order_by(session_technicians.c.joined_at)
INSERT_SESSION = sessions.insert()
INSERT_PARTICIPANT = participants.insert()
PARTICIPANT_BY_TOKEN = sa.select(participants).where(
    participants.c.token_hash == sa.bindparam("digest"))
PARTICIPANT_NAME = sa.select(participants.c.display_name).where(
    participants.c.id == sa.bindparam("participant_id"),
    participants.c.session_id == sa.bindparam("session_id"))


def _session_from_row(row: Any, collaborator_ids: tuple[int, ...] = ()) -> Session:
    return Session(row.id, row.technician_id, row.technician_name, SessionState(row.state),
                   row.created_at, row.started_at, row.ended_at, row.end_reason,
                   row.end_user_name, row.key_expires_at, row.reconnect_deadline,
                   collaborator_ids)


async def load(conn: AsyncConnection, session_id: str) -> Session | None:
    row = (await conn.execute(_SESSION_BY_ID, {"session_id": session_id})).first()
    if row is None:
        return None
    helpers = await _collaborators(conn, [session_id])
    return _session_from_row(row, helpers.get(session_id, ()))


async def load_visible(conn: AsyncConnection, technician_id: int | None,
                       limit: int) -> list[Session]:
    """The technician's own sessions and those they collaborate in (None: all), newest
    first."""
    query = session_query().order_by(sessions.c.created_at.desc()).limit(limit)
    if technician_id is not None:
        collaborating = sa.select(session_technicians.c.session_id).where(
            session_technicians.c.technician_id == technician_id,
            session_technicians.c.left_at.is_(None))
        query = query.where(sa.or_(sessions.c.technician_id == technician_id,
                                   sessions.c.id.in_(collaborating)))
    return await load_all(conn, query)


async def load_all(conn: AsyncConnection, query: sa.Select[Any]) -> list[Session]:
    """The sessions a `session_query()` with conditions finds, with their collaborators."""
    rows = (await conn.execute(query)).all()
    helpers = await _collaborators(conn, [row.id for row in rows])
    return [_session_from_row(row, helpers.get(row.id, ())) for row in rows]


async def count_by_state(conn: AsyncConnection) -> dict[SessionState, int]:
    """How many sessions are in each state, every state (0 for none)."""
    rows = (await conn.execute(sa.select(sessions.c.state, sa.func.count())
                               .group_by(sessions.c.state))).all()
    counts = {SessionState(state): int(count) for state, count in rows}
    return {state: counts.get(state, 0) for state in SessionState}


async def _collaborators(conn: AsyncConnection,
                         session_ids: list[str]) -> dict[str, tuple[int, ...]]:
    """Technicians present in each session besides its owner, longest present first."""
    if not session_ids:
        return {}
    rows = (await conn.execute(_COLLABORATORS, {"ids": session_ids})).all()
    found: dict[str, list[int]] = {}
    for row in rows:
        found.setdefault(row.session_id, []).append(row.technician_id)
    return {session_id: tuple(ids) for session_id, ids in found.items()}


async def took_part(conn: AsyncConnection, session_id: str, technician_id: int) -> bool:
    """Whether the technician ever owned the session or was in it (`session_members`)."""
    return await conn.scalar(sa.select(sa.literal(True)).where(
        session_members.c.session_id == session_id,
        session_members.c.technician_id == technician_id)) is not None


async def notes(conn: AsyncConnection, session_id: str) -> str:
    """The technicians' notes on the session ("" for none)."""
    return str(await conn.scalar(sa.select(sessions.c.notes).where(
        sessions.c.id == session_id)) or "")
