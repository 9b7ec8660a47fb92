"""Support sessions: their keys, participants, technicians, handoffs, the event journal
and the searchable text."""

from __future__ import annotations

import sqlalchemy as sa

from .base import metadata

sessions = sa.Table(
    "sessions", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    # The owner; NULL while a customer's request waits in a team queue (broker/intake).
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id"), index=True),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("ended_at", sa.Float),
    sa.Column("end_reason", sa.String(40)),
    sa.Column("end_user_name", sa.String(200)),
    # While the end user is away: when the session ends unless they are back (absolute,
    # so a restarted broker ends only sessions whose window really passed).
    sa.Column("reconnect_deadline", sa.Float),
    # Technicians' notes, never shown to the end user; kept with the transcript.
    sa.Column("notes", sa.Text),
    # The team whose queue the session waits in, and the last queue it was in.
    sa.Column("queue_team_id", sa.Integer),
    sa.Column("last_queue_team_id", sa.Integer),
    # History pages: newest first, ties broken by id (broker/sessions/history.py).
    sa.Index("ix_sessions_created", "created_at", "id"),
)


# Every technician who ever owned a session or was in it, kept by database triggers on
# `sessions` and `session_technicians` (migration 0013): the history of "my sessions".
session_members = sa.Table(
    "session_members", metadata,
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id"), primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              primary_key=True, index=True),
)


# The searchable words of a session: each chat line, the end user's name, the notes and
# the transfer notes, one row each (`body`: the words only, see broker/sessions/search.py).
# Indexed by SQLite FTS5 (the external-content table session_texts_fts) or PostgreSQL
# (a GIN index on the generated column doc, to_tsvector('simple', body), which only
# PostgreSQL has); migration 0013 makes either.
session_texts = sa.Table(
    "session_texts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)


# Every technician who has been in a session besides its owner at the time: collaborators,
# and former owners who stayed. `left_at` is set when they leave.
session_technicians = sa.Table(
    "session_technicians", metadata,
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id"), primary_key=True),
    sa.Column("joined_at", sa.Float, nullable=False),
    sa.Column("left_at", sa.Float),
)


handoffs = sa.Table(
    "handoffs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              nullable=False, index=True),
    # NULL for a customer's request put in the queue by broker/intake.
    sa.Column("from_technician_id", sa.Integer, sa.ForeignKey("technicians.id")),
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


support_keys = sa.Table(
    "support_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              nullable=False, unique=True),
    # Keyed hashes only (HMAC-SHA256 with the server secret); never the key itself.
    sa.Column("code_hash", sa.String(64), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("used_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
    # The live key, sealed (AES-GCM) so it can still be sent by SMS or email; erased when
    # the key is used, revoked or its session ends.
    sa.Column("sealed", sa.Text),
)


participants = sa.Table(
    "participants", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)


events = sa.Table(
    "events", metadata,
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("type", sa.String(40), nullable=False),
    # Who caused it: "t<id>" for a technician, "p<id>" for a participant, NULL for the broker.
    sa.Column("sender", sa.String(40)),
    sa.Column("client_id", sa.String(64)),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("session_id", "sender", "client_id", name="uq_events_client_id"),
)


# The participants that are a native agent (broker/rtc/agents.py): only their sockets may
# say agent.hello. A row of an agent link holds the link's keyed hash (a link admits one
# agent); its participant_id is NULL while the agent it admits is being made.
agent_participants = sa.Table(
    "agent_participants", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("participant_id", sa.Integer,
              sa.ForeignKey("participants.id", ondelete="CASCADE"), unique=True),
    sa.Column("link_hash", sa.String(64), unique=True),
    sa.Column("admitted_at", sa.Float, nullable=False),
)
