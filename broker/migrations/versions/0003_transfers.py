"""File transfer: one row per upload (the record, and the wrapped key of its data).

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "transfers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("sender_role", sa.String(20), nullable=False),
        sa.Column("sender_id", sa.Integer, nullable=False),
        sa.Column("sender_name", sa.String(200), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(20), nullable=False, index=True),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float),
        sa.Column("completed_at", sa.Float),
        sa.Column("sha256", sa.String(64)),
        sa.Column("declared_sha256", sa.String(64)),
        sa.Column("upload_metadata", sa.Text, nullable=False),
        sa.Column("reason", sa.String(40)),
        sa.Column("blob_id", sa.String(64), nullable=False, unique=True),
        sa.Column("wrapped_key", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("transfers")
