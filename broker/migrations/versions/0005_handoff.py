"""Handoff: teams, technicians in a session, handoffs (transfers and queues), notes, logins.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("technician_id", sa.Integer,
                  sa.ForeignKey("technicians.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_table(
        "session_technicians",
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id"),
                  primary_key=True),
        sa.Column("joined_at", sa.Float, nullable=False),
        sa.Column("left_at", sa.Float),
    )
    op.create_table(
        "handoffs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("from_technician_id", sa.Integer, sa.ForeignKey("technicians.id"),
                  nullable=False),
        sa.Column("to_technician_id", sa.Integer, sa.ForeignKey("technicians.id"), index=True),
        sa.Column("to_team_id", sa.Integer, sa.ForeignKey("teams.id"), index=True),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("keep_sender", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(20), nullable=False, index=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("deadline", sa.Float),
        sa.Column("decided_at", sa.Float),
        sa.Column("decided_by", sa.Integer, sa.ForeignKey("technicians.id")),
        sa.Column("reason", sa.Text),
    )
    op.create_table(
        "logins",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("technician_id", sa.Integer,
                  sa.ForeignKey("technicians.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("ended_reason", sa.String(40)),
    )
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("notes", sa.Text))
        batch.add_column(sa.Column("queue_team_id", sa.Integer))
        batch.add_column(sa.Column("last_queue_team_id", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("last_queue_team_id")
        batch.drop_column("queue_team_id")
        batch.drop_column("notes")
    for table in ("logins", "handoffs", "session_technicians", "team_members", "teams"):
        op.drop_table(table)
