"""The post-session survey: its questions and the end users' answers (broker/survey)."""

from __future__ import annotations

import sqlalchemy as sa

from .base import metadata

# The survey's configuration as admins set it: one JSON document per `name` ("survey").
survey_config = sa.Table(
    "survey_config", metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# One survey per session, sent by its end user after the end (the primary key keeps it to
# one). Each answer NULL where none was given.
survey_responses = sa.Table(
    "survey_responses", metadata,
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("participant_id", sa.Integer, nullable=False),
    sa.Column("rating", sa.Integer),
    sa.Column("solved", sa.Boolean),
    sa.Column("comment", sa.Text),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("submitted_at", sa.Float, nullable=False),
)
