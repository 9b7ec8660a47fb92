"""Key delivery by SMS and email: sealed live keys, deliveries and their attempts.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("support_keys") as batch:
        batch.add_column(sa.Column("sealed", sa.Text))
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id"), nullable=False,
                  index=True),
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
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("delivery_id", sa.String(32),
                  sa.ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("delivery_attempts")
    op.drop_table("deliveries")
    with op.batch_alter_table("support_keys") as batch:
        batch.drop_column("sealed")
