"""The technician's closing form (broker/closing): the categories admins offer, and what
the session's technicians recorded after its end."""

from __future__ import annotations

import sqlalchemy as sa

from .base import metadata

# The closing form's configuration as admins set it: one JSON document per `name`
# ("closing": the categories), as survey_config holds the survey's.
closing_config = sa.Table(
    "closing_config", metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Every save of a session's closing form, never changed afterwards: the newest row of a
# session is its closing now (its id orders them, and the webhook dispatcher reads the
# table by it). `category` is the category's id and `category_label` its names then (a
# JSON object of language -> name), so that a category an admin removed later still reads
# as it did. NULL where the technician left a field empty.
session_closings = sa.Table(
    "session_closings", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("category", sa.String(40)),
    sa.Column("category_label", sa.Text),
    sa.Column("resolved", sa.Boolean),
    sa.Column("ticket", sa.String(64)),
    sa.Column("technician_id", sa.Integer,
              sa.ForeignKey("technicians.id", ondelete="SET NULL")),
    sa.Column("technician_name", sa.String(200), nullable=False),
    sa.Column("recorded_at", sa.Float, nullable=False),
    sa.Index("ix_session_closings_session", "session_id", "id"),
)
