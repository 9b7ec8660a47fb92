"""Webhook endpoints, the messages for them, and how far the dispatcher has read
(broker/webhooks)."""

from __future__ import annotations

import sqlalchemy as sa

from .base import metadata

# Webhook endpoints (broker/webhooks): where to send which events, and the signing secret
# sealed (AES-GCM, broker/hashing.py) so the broker can sign with it; after a rotation the
# previous secret too, until `previous_until`. `failing_since`: the first failure since
# the last success (an endpoint failing for a day is disabled); `active_since`: when it was
# made or last enabled, the oldest events it gets.
webhook_endpoints = sa.Table(
    "webhook_endpoints", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("event_types", sa.Text, nullable=False),  # a JSON list
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("disabled_reason", sa.Text),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("previous_secret", sa.Text),
    sa.Column("previous_until", sa.Float),
    sa.Column("failing_since", sa.Float),
    sa.Column("active_since", sa.Float, nullable=False),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("technicians.id", ondelete="SET NULL")),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


# One event for one endpoint: stored before it is sent (the body exactly as signed), sent
# in `id` order within its `queue` (the session), claimed by a node with a conditional
# UPDATE (`claimed_by` until `claimed_until`). The delivery log of an endpoint.
webhook_messages = sa.Table(
    "webhook_messages", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("endpoint_id", sa.String(32),
              sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    sa.Column("event_id", sa.String(100), nullable=False),
    sa.Column("event_type", sa.String(40), nullable=False),
    sa.Column("session_id", sa.String(32)),
    sa.Column("queue", sa.String(100), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_until", sa.Float),
    sa.Column("response_status", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("delivered_at", sa.Float),
    sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_messages_event"),
    sa.Index("ix_webhook_messages_due", "endpoint_id", "status", "next_attempt_at"),
    sa.Index("ix_webhook_messages_queue", "endpoint_id", "queue", "id"),
    sa.Index("ix_webhook_messages_updated", "updated_at"),
)


# How far the webhook dispatcher has turned a source (the journal's events, the key
# deliveries' attempts) into messages: every row up to `position` is done. On PostgreSQL
# `events` has a `gid` column for this (bigserial, migration 0011; not in this Table, which
# SQLite shares); SQLite uses the rowid.
webhook_cursors = sa.Table(
    "webhook_cursors", metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
