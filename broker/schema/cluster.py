"""What the nodes sharing one database know of each other."""

from __future__ import annotations

import sqlalchemy as sa

from .base import metadata

# Facts about this database for all nodes (the cluster id that names its Redis channels).
broker_meta = sa.Table(
    "broker_meta", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


# The running broker nodes (several share one PostgreSQL database), each with a heartbeat.
nodes = sa.Table(
    "nodes", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("address", sa.String(200), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("seen_at", sa.Float, nullable=False),
)


# A row while the node has at least one socket of that role open to the session (written
# when the first opens, deleted when the last closes); void once the node's heartbeat stops.
node_sessions = sa.Table(
    "node_sessions", metadata,
    sa.Column("node_id", sa.String(64), sa.ForeignKey("nodes.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("session_id", sa.String(32), primary_key=True, index=True),
    sa.Column("role", sa.String(20), primary_key=True),
)


# Likewise for technicians' dashboards (their presence for handoffs).
node_dashboards = sa.Table(
    "node_dashboards", metadata,
    sa.Column("node_id", sa.String(64), sa.ForeignKey("nodes.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("technician_id", sa.Integer, primary_key=True),
)
