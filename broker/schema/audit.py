"""The audit log's tables (broker/audit): the records, and the head of their hash chain."""

from __future__ import annotations

import sqlalchemy as sa

from .base import metadata

# Append-only: one row per act, numbered 1, 2, 3, ... by the writer that holds the chain
# head's lock (no gaps, one order on every node); `prev_hash` links each to the one
# before it (broker/audit/model.py). No foreign keys: the log outlives what it names.
audit_records = sa.Table(
    "audit_records", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("actor_kind", sa.String(20), nullable=False),
    sa.Column("actor_id", sa.String(64)),
    sa.Column("actor_name", sa.String(200), nullable=False),
    sa.Column("address", sa.String(100)),
    sa.Column("session_id", sa.String(32), index=True),
    sa.Column("action", sa.String(60), nullable=False, index=True),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_records_actor", "actor_kind", "actor_id"),
)

# One row ("head"): the last record's number and hash. Every writer locks it first
# (SELECT ... FOR UPDATE on PostgreSQL; SQLite has one writer), so records are numbered
# and linked in one order even when several nodes write at once.
audit_chain = sa.Table(
    "audit_chain", metadata,
    sa.Column("name", sa.String(20), primary_key=True),
    sa.Column("last_id", sa.BigInteger, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)
