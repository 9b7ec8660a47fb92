"""The closing form's rows: the categories document and every save of a session's form."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..schema import closing_config, session_closings
from .model import Answers, Category, Closing, ClosingConfig

_NAME = "closing"
_C = session_closings.c


async def load_config(conn: AsyncConnection) -> ClosingConfig:
    value = await conn.scalar(sa.select(closing_config.c.value).where(
        closing_config.c.name == _NAME))
    return ClosingConfig() if value is None else ClosingConfig.parse(json.loads(value))


async def save_config(conn: AsyncConnection, config: ClosingConfig, now: float) -> None:
    text = json.dumps(config.to_json(), ensure_ascii=False)
    updated = await conn.execute(closing_config.update().where(
        closing_config.c.name == _NAME).values(value=text, updated_at=now))
    if updated.rowcount == 0:
        await conn.execute(closing_config.insert().values(name=_NAME, value=text,
                                                          updated_at=now))


async def insert(conn: AsyncConnection, session_id: str, answers: Answers,
                 technician_id: int, technician_name: str, now: float) -> Closing:
    category = answers.category
    await conn.execute(session_closings.insert().values(
        session_id=session_id, category=None if category is None else category.id,
        category_label=None if category is None else json.dumps(dict(category.label),
                                                                ensure_ascii=False),
        resolved=answers.resolved, ticket=answers.ticket, technician_id=technician_id,
        technician_name=technician_name, recorded_at=now))
    return Closing(session_id, category, answers.resolved, answers.ticket, technician_id,
                   technician_name, now)


async def latest(conn: AsyncConnection, session_id: str) -> Closing | None:
    """The session's closing now: its newest save."""
    row = (await conn.execute(sa.select(session_closings).where(
        _C.session_id == session_id).order_by(_C.id.desc()).limit(1))).first()
    return None if row is None else closing(row)


def closing(row: Any) -> Closing:
    """A session_closings row as a Closing."""
    category = None if row.category is None else Category(
        row.category, tuple(json.loads(row.category_label).items()))
    return Closing(row.session_id, category, row.resolved, row.ticket, row.technician_id,
                   row.technician_name, row.recorded_at)
