"""The technician console's own data: canned responses and per-technician preferences.

`canned_responses` holds the company's (neither `team_id` nor `technician_id` set), each
team's (`team_id`) and each technician's own (`technician_id`) canned responses; a partial
unique index per shelf keeps its shortcuts unique. `technician_preferences` holds what a
technician changed of their console preferences, as a JSON object.

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"

_SHELVES = (
    ("uq_canned_company_shortcut", ["shortcut"], "team_id IS NULL AND technician_id IS NULL"),
    ("uq_canned_team_shortcut", ["team_id", "shortcut"], "team_id IS NOT NULL"),
    ("uq_canned_personal_shortcut", ["technician_id", "shortcut"], "technician_id IS NOT NULL"),
)


def upgrade() -> None:
    op.create_table(
        "canned_responses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id", ondelete="CASCADE")),
        sa.Column("technician_id", sa.Integer,
                  sa.ForeignKey("technicians.id", ondelete="CASCADE")),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("shortcut", sa.String(32)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.CheckConstraint("team_id IS NULL OR technician_id IS NULL",
                           name="ck_canned_one_shelf"),
    )
    op.create_index("ix_canned_responses_team_id", "canned_responses", ["team_id"])
    op.create_index("ix_canned_responses_technician_id", "canned_responses",
                    ["technician_id"])
    for name, columns, where in _SHELVES:
        op.create_index(name, "canned_responses", columns, unique=True,
                        sqlite_where=sa.text(where), postgresql_where=sa.text(where))
    op.create_table(
        "technician_preferences",
        sa.Column("technician_id", sa.Integer,
                  sa.ForeignKey("technicians.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("preferences", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("technician_preferences")
    for name, _, _ in _SHELVES:
        op.drop_index(name, "canned_responses")
    op.drop_index("ix_canned_responses_technician_id", "canned_responses")
    op.drop_index("ix_canned_responses_team_id", "canned_responses")
    op.drop_table("canned_responses")
