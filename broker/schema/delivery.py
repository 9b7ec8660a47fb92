"""Key invitations and notices sent by SMS or email (broker/delivery), with every attempt."""

from __future__ import annotations

import sqlalchemy as sa

from .base import metadata

deliveries = sa.Table(
    "deliveries", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    # A key's invitation names its session and technician; a notice (`content`: its
    # subject and text as JSON, e.g. a customer's message to a team) names neither.
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              index=True),
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id"), index=True),
    sa.Column("channel", sa.String(10), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("language", sa.String(5), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("provider_id", sa.String(64), index=True),
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    # The node sending it (status "sending"), so that only its own cut-off attempts count
    # as interrupted when a node restarts (or another node finds it dead).
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("content", sa.Text),
)


delivery_attempts = sa.Table(
    "delivery_attempts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("delivery_id", sa.String(32), sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)
