"""Webhooks: endpoints, the messages to send them, and the dispatcher's cursors.

On PostgreSQL `events` gets `gid` (bigserial, indexed): the order in which events were
numbered across all sessions, which the webhook dispatcher follows. SQLite has the rowid for
that. The cursors start at the newest event and delivery attempt: what happened before
webhooks existed is not sent.

Revision ID: 0011
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("event_types", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text),
        sa.Column("previous_until", sa.Float),
        sa.Column("failing_since", sa.Float),
        sa.Column("active_since", sa.Float, nullable=False),
        sa.Column("created_by", sa.Integer,
                  sa.ForeignKey("technicians.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "webhook_messages",
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
    )
    op.create_index("ix_webhook_messages_due", "webhook_messages",
                    ["endpoint_id", "status", "next_attempt_at"])
    op.create_index("ix_webhook_messages_queue", "webhook_messages",
                    ["endpoint_id", "queue", "id"])
    op.create_index("ix_webhook_messages_updated", "webhook_messages", ["updated_at"])
    cursors = op.create_table(
        "webhook_cursors",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE events ADD COLUMN gid BIGSERIAL")
        op.execute("CREATE INDEX ix_events_gid ON events (gid)")
        newest_event = "SELECT coalesce(max(gid), 0) FROM events"
    else:
        newest_event = "SELECT coalesce(max(rowid), 0) FROM events"
    now = time.time()
    op.bulk_insert(cursors, [
        {"name": "events", "position": bind.scalar(sa.text(newest_event)), "updated_at": now},
        {"name": "delivery_attempts", "updated_at": now,
         "position": bind.scalar(sa.text("SELECT coalesce(max(id), 0) FROM delivery_attempts"))},
    ])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_events_gid")
        op.execute("ALTER TABLE events DROP COLUMN gid")
    op.drop_table("webhook_cursors")
    op.drop_index("ix_webhook_messages_updated", "webhook_messages")
    op.drop_index("ix_webhook_messages_queue", "webhook_messages")
    op.drop_index("ix_webhook_messages_due", "webhook_messages")
    op.drop_table("webhook_messages")
    op.drop_table("webhook_endpoints")
