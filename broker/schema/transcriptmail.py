"""Transcripts by email (broker/transcriptmail): who gets them, the end users' confirmed
addresses, and which copies were queued."""

from __future__ import annotations

import sqlalchemy as sa

from .base import metadata

# Where transcripts go at a session's end, per level: `scope` "company" (scope_id 0) or
# "team" (the team's id), each on or off, with its addresses (a JSON list), the
# language and time zone they are written in. A technician's own copy is a preference.
transcript_mail_levels = sa.Table(
    "transcript_mail_levels", metadata,
    sa.Column("scope", sa.String(16), primary_key=True),
    sa.Column("scope_id", sa.Integer, primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("addresses", sa.Text, nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("time_zone", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# An end user's request for a copy: the address, and the single-use code sent to it
# (only its keyed hash, NULL once used) until it expires; `confirmed_at` once the right
# code came back. One per session.
transcript_copies = sa.Table(
    "transcript_copies", metadata,
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("code_hash", sa.String(64)),
    sa.Column("code_expires_at", sa.Float, nullable=False),
    sa.Column("codes_sent", sa.Integer, nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("time_zone", sa.String(64), nullable=False),
    sa.Column("confirmed_at", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Every transcript queued for sending, one per session and address (the primary key), so
# that nobody gets the same transcript twice: not from two levels, not from two nodes.
transcript_mails = sa.Table(
    "transcript_mails", metadata,
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("address", sa.String(320), primary_key=True),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("delivery_id", sa.String(32)),
    sa.Column("created_at", sa.Float, nullable=False),
)
