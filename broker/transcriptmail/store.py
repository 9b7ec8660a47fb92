"""The rows of transcripts by email: the levels' settings, end users' copies, and the
transcripts queued (one per session and address)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..schema import (
    session_members,
    sessions,
    team_members,
    technicians,
    transcript_copies,
    transcript_mail_levels,
    transcript_mails,
)
from .model import Copy, Level


async def level(conn: AsyncConnection, scope: str, scope_id: int) -> Level:
    row = (await conn.execute(sa.select(transcript_mail_levels).where(
        transcript_mail_levels.c.scope == scope,
        transcript_mail_levels.c.scope_id == scope_id))).first()
    if row is None:
        return Level()
    return Level(row.enabled, tuple(json.loads(row.addresses)), row.language, row.time_zone)


async def save_level(conn: AsyncConnection, scope: str, scope_id: int, value: Level,
                     now: float) -> None:
    values = {"enabled": value.enabled, "addresses": json.dumps(list(value.addresses)),
              "language": value.language, "time_zone": value.time_zone, "updated_at": now}
    updated = await conn.execute(transcript_mail_levels.update().where(
        transcript_mail_levels.c.scope == scope,
        transcript_mail_levels.c.scope_id == scope_id).values(**values))
    if updated.rowcount == 0:
        await conn.execute(transcript_mail_levels.insert().values(
            scope=scope, scope_id=scope_id, **values))


async def teams_of_session(conn: AsyncConnection, session_id: str) -> list[int]:
    """The teams of the session's owner, and the team whose queue it last waited in."""
    row = (await conn.execute(sa.select(sessions.c.technician_id, sessions.c.queue_team_id,
                                        sessions.c.last_queue_team_id).where(
        sessions.c.id == session_id))).first()
    if row is None:
        return []
    found = [] if row.technician_id is None else list((await conn.scalars(
        sa.select(team_members.c.team_id).where(
            team_members.c.technician_id == row.technician_id)
        .order_by(team_members.c.team_id))).all())
    for queue in (row.queue_team_id, row.last_queue_team_id):
        if queue is not None and queue not in found:
            found.append(queue)
    return found


async def members(conn: AsyncConnection, session_id: str) -> list[tuple[int, str]]:
    """(id, email) of every technician who owned the session or took part in it."""
    rows = (await conn.execute(
        sa.select(technicians.c.id, technicians.c.email)
        .select_from(session_members.join(technicians))
        .where(session_members.c.session_id == session_id,
               technicians.c.disabled_at.is_(None))
        .order_by(technicians.c.id))).all()
    return [(row.id, row.email) for row in rows]


async def copy(conn: AsyncConnection, session_id: str, *, lock: bool = False) -> Copy | None:
    query = sa.select(transcript_copies).where(transcript_copies.c.session_id == session_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    return None if row is None else Copy.from_row(row)


async def save_copy(conn: AsyncConnection, found: Copy | None, values: dict[str, Any]) -> None:
    if found is None:
        await conn.execute(transcript_copies.insert().values(**values))
    else:
        await conn.execute(transcript_copies.update().where(
            transcript_copies.c.session_id == found.session_id).values(**values))


async def use_code(conn: AsyncConnection, session_id: str, code_hash: str,
                   now: float) -> bool:
    """Mark the code used (once: a second use of the same code finds none)."""
    used = await conn.execute(transcript_copies.update().where(
        transcript_copies.c.session_id == session_id,
        transcript_copies.c.code_hash == code_hash).values(code_hash=None, confirmed_at=now))
    return bool(used.rowcount == 1)


async def claim(conn: AsyncConnection, session_id: str, address: str, level: str,
                now: float) -> bool:
    """Whether this address is new for this session's transcript (then it is recorded)."""
    try:
        async with conn.begin_nested():
            await conn.execute(transcript_mails.insert().values(
                session_id=session_id, address=address.casefold(), level=level,
                created_at=now))
    except sa.exc.IntegrityError:
        return False
    return True


async def sent(conn: AsyncConnection, session_id: str, address: str,
               delivery_id: str) -> None:
    await conn.execute(transcript_mails.update().where(
        transcript_mails.c.session_id == session_id,
        transcript_mails.c.address == address.casefold()).values(delivery_id=delivery_id))


async def queued(conn: AsyncConnection, session_id: str) -> list[tuple[str, str]]:
    rows = (await conn.execute(sa.select(transcript_mails.c.address, transcript_mails.c.level)
                               .where(transcript_mails.c.session_id == session_id)
                               .order_by(transcript_mails.c.address))).all()
    return [(row.address, row.level) for row in rows]
