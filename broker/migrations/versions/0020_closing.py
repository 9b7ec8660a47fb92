"""The technician's closing form (broker/closing): its categories and every save of a
session's closing; the webhook dispatcher's position in the latter.

Revision ID: 0020
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"


def upgrade() -> None:
    op.create_table(
        "closing_config",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "session_closings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(32),
                  sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("category", sa.String(40)),
        sa.Column("category_label", sa.Text),
        sa.Column("resolved", sa.Boolean),
        sa.Column("ticket", sa.String(64)),
        sa.Column("technician_id", sa.Integer,
                  sa.ForeignKey("technicians.id", ondelete="SET NULL")),
        sa.Column("technician_name", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.Float, nullable=False),
    )
    op.create_index("ix_session_closings_session", "session_closings", ["session_id", "id"])
    cursors = sa.table("webhook_cursors", sa.column("name", sa.String),
                       sa.column("position", sa.BigInteger), sa.column("updated_at", sa.Float))
    op.bulk_insert(cursors, [{"name": "session_closings", "position": 0,
                              "updated_at": time.time()}])


def downgrade() -> None:
    op.execute("DELETE FROM webhook_cursors WHERE name = 'session_closings'")
    op.drop_index("ix_session_closings_session", "session_closings")
    op.drop_table("session_closings")
    op.drop_table("closing_config")
