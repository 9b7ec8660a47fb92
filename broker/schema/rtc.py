"""Screen shares and the signaling frames waiting for a peer (broker/rtc)."""

from __future__ import annotations

import sqlalchemy as sa

from .base import metadata

# Screen shares (broker/rtc): each one's state, changed by a conditional update on
# `version`, and per peer the socket ready for its signaling (`*_conn`, a token naming the
# node process that has it) and whether it ever was ready. At most one live per session.
shares = sa.Table(
    "shares", metadata,
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("share_id", sa.String(64), primary_key=True),
    sa.Column("direction", sa.String(30), nullable=False),
    sa.Column("source", sa.String(10), nullable=False),
    sa.Column("sharer", sa.String(40), nullable=False),
    sa.Column("sharer_role", sa.String(20), nullable=False),
    sa.Column("sharer_name", sa.String(200), nullable=False),
    sa.Column("viewer", sa.String(40), nullable=False),
    sa.Column("viewer_role", sa.String(20), nullable=False),
    sa.Column("viewer_name", sa.String(200), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("paused_by", sa.String(40)),
    sa.Column("control", sa.String(20), nullable=False),
    sa.Column("live", sa.Boolean, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("sharer_conn", sa.String(64)),
    sa.Column("sharer_readied", sa.Boolean, nullable=False),
    sa.Column("viewer_conn", sa.String(64)),
    sa.Column("viewer_readied", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("uq_shares_live", "session_id", unique=True, sqlite_where=sa.text("live"),
             postgresql_where=sa.text("live")),
)


# Signaling frames waiting for a peer of a share that has no ready socket.
share_signals = sa.Table(
    "share_signals", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("share_id", sa.String(64), nullable=False),
    sa.Column("recipient", sa.String(40), nullable=False),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("frame", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_share_signals_line", "session_id", "share_id", "recipient"),
)
