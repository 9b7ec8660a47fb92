"""Screen shares in the database, so that any node serves either peer of a share.

`shares` holds each share's state (one row per share, changed with a conditional update
on `version`) and, per peer, the socket that said `rtc.ready` last (`*_conn`, a token of
the node process that has it) and whether that peer ever was ready (`*_readied`). At most
one share of a session is live (a partial unique index). `share_signals` holds the
signaling frames that wait for a peer without a ready socket.

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "shares",
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
    )
    op.create_index("uq_shares_live", "shares", ["session_id"], unique=True,
                    sqlite_where=sa.text("live"), postgresql_where=sa.text("live"))
    op.create_table(
        "share_signals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("share_id", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(40), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("frame", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_share_signals_line", "share_signals",
                    ["session_id", "share_id", "recipient"])


def downgrade() -> None:
    op.drop_index("ix_share_signals_line", "share_signals")
    op.drop_table("share_signals")
    op.drop_index("uq_shares_live", "shares")
    op.drop_table("shares")
