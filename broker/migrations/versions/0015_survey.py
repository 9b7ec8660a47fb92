"""The post-session survey (broker/survey): its configuration and one response per session.

Revision ID: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    op.create_table(
        "survey_config",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "survey_responses",
        sa.Column("session_id", sa.String(32),
                  sa.ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("participant_id", sa.Integer, nullable=False),
        sa.Column("rating", sa.Integer),
        sa.Column("solved", sa.Boolean),
        sa.Column("comment", sa.Text),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("submitted_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("survey_responses")
    op.drop_table("survey_config")
