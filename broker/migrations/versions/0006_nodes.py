"""Several broker nodes: sequence numbers handed out by the database, and who is connected
to which node.

A journal writer numbers a session's events with the session row locked (from the
highest number stored), so two nodes writing to one session never number two events
alike; `ix_sessions_state` serves the sweepers of every node. `nodes` are the running
broker processes (a heartbeat each); `node_sessions` and `node_dashboards` say who has
sockets open on each of them.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.create_index("ix_sessions_state", ["state"])
    # Which node is sending a delivery: a node that starts (or finds another one dead)
    # marks only its own (or the dead one's) cut-off attempts as interrupted.
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(64)))
    # Facts about this database for all nodes: the cluster's id names its Redis channels,
    # so that brokers with different databases can share one Redis without cross-talk.
    op.create_table(
        "broker_meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("address", sa.String(200), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("seen_at", sa.Float, nullable=False),
    )
    # A row while the node has at least one socket of that role open to the session (or
    # one dashboard of that technician): written when the first opens, deleted when the
    # last closes, and void when the node stops sending heartbeats.
    op.create_table(
        "node_sessions",
        sa.Column("node_id", sa.String(64), sa.ForeignKey("nodes.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("session_id", sa.String(32), primary_key=True, index=True),
        sa.Column("role", sa.String(20), primary_key=True),
    )
    op.create_table(
        "node_dashboards",
        sa.Column("node_id", sa.String(64), sa.ForeignKey("nodes.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("technician_id", sa.Integer, primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("node_dashboards")
    op.drop_table("node_sessions")
    op.drop_table("nodes")
    op.drop_table("broker_meta")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("claimed_by")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_index("ix_sessions_state")
