"""Files moving through a session (broker/transfer)."""

from __future__ import annotations

import sqlalchemy as sa

from .base import metadata

transfers = sa.Table(
    "transfers", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              nullable=False, index=True),
    # The sender, as in events: a technician or a participant, with the name they had.
    sa.Column("sender_role", sa.String(20), nullable=False),
    sa.Column("sender_id", sa.Integer, nullable=False),
    sa.Column("sender_name", sa.String(200), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    # Bytes stored as of the last commit; the tail file in the transfer directory is the
    # authority after a crash (see broker/transfer/records.py).
    sa.Column("received", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float),
    sa.Column("completed_at", sa.Float),
    sa.Column("sha256", sa.String(64)),
    sa.Column("declared_sha256", sa.String(64)),
    # Upload-Metadata as the client sent it (tus echoes it on HEAD).
    sa.Column("upload_metadata", sa.Text, nullable=False),
    sa.Column("reason", sa.String(40)),
    # The file's name in the transfer directory, and its key wrapped by the master key.
    sa.Column("blob_id", sa.String(64), nullable=False, unique=True),
    sa.Column("wrapped_key", sa.Text, nullable=False),
)
