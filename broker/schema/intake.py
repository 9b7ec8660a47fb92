"""Customers' requests and the intake's configuration (broker/intake)."""

from __future__ import annotations

import sqlalchemy as sa

from .base import metadata

# Customers' requests (broker/intake): a chat waiting in a team queue (`session_id`, with
# its pending handoff) or a message left while nobody was online (no session until a
# technician answers it). The form's values, the response target it was given (`due_at`,
# `alert_at`, `target_seconds`, `business_hours`)
# and how it went (`first_response_at`, `alerted_at`, `breached_at`, `closed_at`);
# `position` is the place in the queue the customer was last told (kept here with several
# nodes; one node keeps it in memory, broker/intake/queue.py).
intake_requests = sa.Table(
    "intake_requests", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              unique=True),
    sa.Column("handoff_id", sa.String(32)),
    sa.Column("participant_id", sa.Integer),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(320)),
    sa.Column("phone", sa.String(40)),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("fields", sa.Text, nullable=False),
    sa.Column("language", sa.String(5), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("due_at", sa.Float, nullable=False),
    sa.Column("alert_at", sa.Float, nullable=False),
    sa.Column("target_seconds", sa.Integer, nullable=False),
    sa.Column("business_hours", sa.Boolean, nullable=False),
    sa.Column("first_response_at", sa.Float),
    sa.Column("alerted_at", sa.Float),
    sa.Column("breached_at", sa.Float),
    sa.Column("connected_at", sa.Float),
    sa.Column("closed_at", sa.Float),
    sa.Column("answered_at", sa.Float),
    sa.Column("answered_by", sa.Integer, sa.ForeignKey("technicians.id")),
    sa.Column("answer_session_id", sa.String(32)),
    sa.Column("position", sa.Integer),
    sa.Index("ix_intake_requests_open", "team_id", "kind", "closed_at"),
)


# The intake's configuration as JSON documents by name (the pre-chat form and targets).
intake_config = sa.Table(
    "intake_config", metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
