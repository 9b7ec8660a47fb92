"""Agent participants: which participants are a native agent (only their sockets may say
agent.hello), and the agent link each was admitted with (a link admits one agent; unique
link hashes settle two redemptions at once).

Participants that said agent.hello before are taken to be agents: until now nothing else
told them apart.

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    table = op.create_table(
        "agent_participants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("participant_id", sa.Integer,
                  sa.ForeignKey("participants.id", ondelete="CASCADE"), unique=True),
        sa.Column("link_hash", sa.String(64), unique=True),
        sa.Column("admitted_at", sa.Float, nullable=False),
    )
    participants = sa.table("participants", sa.column("id", sa.Integer),
                            sa.column("session_id", sa.String),
                            sa.column("created_at", sa.Float))
    events = sa.table("events", sa.column("sender", sa.String), sa.column("type", sa.String))
    sender = sa.literal("p", sa.String) + sa.cast(participants.c.id, sa.String)
    op.execute(table.insert().from_select(
        ["session_id", "participant_id", "admitted_at"],
        sa.select(participants.c.session_id, participants.c.id, participants.c.created_at)
        .where(sender.in_(sa.select(events.c.sender).where(
            events.c.type == "agent.connected")))))


def downgrade() -> None:
    op.drop_table("agent_participants")
