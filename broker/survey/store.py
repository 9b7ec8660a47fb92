"""The survey's rows: the configuration document and the responses."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..schema import survey_config, survey_responses
from .model import Answers, SurveyConfig, SurveyResponse

_NAME = "survey"


async def load_config(conn: AsyncConnection) -> SurveyConfig:
    value = await conn.scalar(sa.select(survey_config.c.value).where(
        survey_config.c.name == _NAME))
    return SurveyConfig() if value is None else SurveyConfig.parse(json.loads(value))


async def save_config(conn: AsyncConnection, config: SurveyConfig, now: float) -> None:
    text = json.dumps(config.to_json(), ensure_ascii=False)
    updated = await conn.execute(survey_config.update().where(
        survey_config.c.name == _NAME).values(value=text, updated_at=now))
    if updated.rowcount == 0:
        await conn.execute(survey_config.insert().values(name=_NAME, value=text,
                                                         updated_at=now))


async def insert_response(conn: AsyncConnection, response: SurveyResponse,
                          participant_id: int) -> None:
    """Raises IntegrityError when the session has its survey already."""
    answers = response.answers
    await conn.execute(survey_responses.insert().values(
        session_id=response.session_id, participant_id=participant_id,
        rating=answers.rating, solved=answers.solved, comment=answers.comment,
        language=response.language, submitted_at=response.submitted_at))


async def delete_response(conn: AsyncConnection, session_id: str) -> None:
    await conn.execute(survey_responses.delete().where(
        survey_responses.c.session_id == session_id))


async def load_response(conn: AsyncConnection, session_id: str) -> SurveyResponse | None:
    row = (await conn.execute(sa.select(survey_responses).where(
        survey_responses.c.session_id == session_id))).first()
    return None if row is None else _response(row)


def _response(row: Any) -> SurveyResponse:
    return SurveyResponse(row.session_id, Answers(row.rating, row.solved, row.comment),
                          row.language, row.submitted_at)
