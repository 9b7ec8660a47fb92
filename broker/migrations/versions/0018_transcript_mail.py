"""Transcripts by email (broker/transcriptmail): the company's and teams' settings, end
users' confirmed addresses with their single-use codes (hashed), and the copies queued.

Revision ID: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"


def upgrade() -> None:
    op.create_table(
        "transcript_mail_levels",
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("scope_id", sa.Integer, primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("addresses", sa.Text, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "transcript_copies",
        sa.Column("session_id", sa.String(32),
                  sa.ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("code_hash", sa.String(64)),
        sa.Column("code_expires_at", sa.Float, nullable=False),
        sa.Column("codes_sent", sa.Integer, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("confirmed_at", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "transcript_mails",
        sa.Column("session_id", sa.String(32),
                  sa.ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("delivery_id", sa.String(32)),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("transcript_mails")
    op.drop_table("transcript_copies")
    op.drop_table("transcript_mail_levels")
