"""Technicians, their logins and API tokens, teams, and what each technician keeps
(canned responses, preferences)."""

from __future__ import annotations

import sqlalchemy as sa

from .base import metadata

technicians = sa.Table(
    "technicians", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(300), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # A disabled technician cannot log in; their logins ended and their tokens were revoked.
    sa.Column("disabled_at", sa.Float),
    # A one-time password (the first admin's, or one an admin reset) is in use: the next
    # login must choose a new one before anything else.
    sa.Column("must_change_password", sa.Boolean, nullable=False, default=False),
)


api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
    # What the token may do (broker/technicians/tokens.py), space-separated; tokens made
    # before scopes existed got all of them (migration 0017).
    sa.Column("scopes", sa.String(200), nullable=False),
    sa.Column("name", sa.String(100), nullable=False, server_default=""),
    sa.Column("expires_at", sa.Float),
    # Written at most once a minute per token and node: a rough "last used".
    sa.Column("last_used_at", sa.Float),
)


teams = sa.Table(
    "teams", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    # Where customers' messages to the team go while nobody is online (broker/intake).
    sa.Column("message_email", sa.String(320)),
)


team_members = sa.Table(
    "team_members", metadata,
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id", ondelete="CASCADE"),
              primary_key=True),
    # A team lead supervises the team's live sessions (broker/supervision); set by admins.
    sa.Column("lead", sa.Boolean, nullable=False, server_default=sa.false()),
)


# Technicians' logins (one per browser login), for seats and for logout that sticks.
logins = sa.Table(
    "logins", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_seen_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Column("ended_reason", sa.String(40)),
)


# Canned responses (broker/canned): the company's (neither id set), a team's (`team_id`) or
# one technician's own (`technician_id`). A shortcut names at most one per shelf.
canned_responses = sa.Table(
    "canned_responses", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id", ondelete="CASCADE"),
              index=True),
    sa.Column("technician_id", sa.Integer,
              sa.ForeignKey("technicians.id", ondelete="CASCADE"), index=True),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("shortcut", sa.String(32)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.CheckConstraint("team_id IS NULL OR technician_id IS NULL", name="ck_canned_one_shelf"),
    sa.Index("uq_canned_company_shortcut", "shortcut", unique=True,
             sqlite_where=sa.text("team_id IS NULL AND technician_id IS NULL"),
             postgresql_where=sa.text("team_id IS NULL AND technician_id IS NULL")),
    sa.Index("uq_canned_team_shortcut", "team_id", "shortcut", unique=True,
             sqlite_where=sa.text("team_id IS NOT NULL"),
             postgresql_where=sa.text("team_id IS NOT NULL")),
    sa.Index("uq_canned_personal_shortcut", "technician_id", "shortcut", unique=True,
             sqlite_where=sa.text("technician_id IS NOT NULL"),
             postgresql_where=sa.text("technician_id IS NOT NULL")),
)


# A technician's console preferences (broker/preferences.py) as a JSON object: only what
# they changed; everything else has its default.
technician_preferences = sa.Table(
    "technician_preferences", metadata,
    sa.Column("technician_id", sa.Integer,
              sa.ForeignKey("technicians.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("preferences", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
