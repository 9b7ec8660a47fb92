"""Customers who start the contact (broker/intake): their requests and the intake's
configuration, sessions and queue entries without a technician, key-less notices.

- `sessions.technician_id` and `handoffs.from_technician_id` may be NULL: a customer's
  request is a session nobody owns yet, waiting in a team queue that nobody put it in.
  `deliveries.session_id` and `technician_id` may be NULL: a notice (a customer's message
  to a team) belongs to neither, and keeps its subject and text in `content`.
- `teams.message_email`: where a team's messages go while nobody of it is online.

SQLite cannot drop a NOT NULL constraint in place, and the usual way round (copy the
table, drop the old one) would, with foreign keys on, delete every row that points at
the dropped table (events, participants, delivery attempts). So the constraint is taken
out of the table's stored definition instead, the way SQLite's documentation describes
for removing NOT NULL constraints (ALTER TABLE, "making other kinds of table schema
changes"): with `writable_schema`, in the migration's transaction, bumping
`schema_version` so that every connection reads the definition again.

Revision ID: 0010
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"

_NULLABLE = (("sessions", "technician_id"), ("handoffs", "from_technician_id"),
             ("deliveries", "session_id"), ("deliveries", "technician_id"))


def _drop_not_null(bind: sa.Connection, table: str, column: str) -> None:
    if bind.dialect.name != "sqlite":
        op.alter_column(table, column, nullable=True)
        return
    sql = bind.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' "
                               "AND name = :t"), {"t": table}).scalar_one()
    pattern = re.compile(rf"(\n\s*{column} \w+(?:\(\d+\))?) NOT NULL")
    changed, count = pattern.subn(r"\1", sql)
    if count != 1:
        raise RuntimeError(f"cannot find {table}.{column} NOT NULL in {sql!r}")
    version = bind.execute(sa.text("PRAGMA schema_version")).scalar_one()
    bind.execute(sa.text("PRAGMA writable_schema = ON"))
    bind.execute(sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' "
                         "AND name = :t"), {"sql": changed, "t": table})
    bind.execute(sa.text(f"PRAGMA schema_version = {int(version) + 1}"))
    bind.execute(sa.text("PRAGMA writable_schema = OFF"))


def upgrade() -> None:
    bind = op.get_bind()
    for table, column in _NULLABLE:
        _drop_not_null(bind, table, column)
    op.add_column("teams", sa.Column("message_email", sa.String(320)))
    op.add_column("deliveries", sa.Column("content", sa.Text))
    op.create_table(
        "intake_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("session_id", sa.String(32),
                  sa.ForeignKey("sessions.id", ondelete="CASCADE"), unique=True),
        sa.Column("handoff_id", sa.String(32)),
        sa.Column("participant_id", sa.Integer),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("phone", sa.String(40)),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("language", sa.String(5), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("due_at", sa.Float, nullable=False),
        sa.Column("alert_at", sa.Float, nullable=False),
        sa.Column("first_response_at", sa.Float),
        sa.Column("alerted_at", sa.Float),
        sa.Column("breached_at", sa.Float),
        sa.Column("connected_at", sa.Float),
        sa.Column("closed_at", sa.Float),
        sa.Column("answered_at", sa.Float),
        sa.Column("answered_by", sa.Integer, sa.ForeignKey("technicians.id")),
        sa.Column("answer_session_id", sa.String(32)),
        sa.Column("position", sa.Integer),
    )
    op.create_index("ix_intake_requests_team_id", "intake_requests", ["team_id"])
    op.create_index("ix_intake_requests_open", "intake_requests",
                    ["team_id", "kind", "closed_at"])
    op.create_table(
        "intake_config",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("intake_config")
    op.drop_index("ix_intake_requests_open", "intake_requests")
    op.drop_index("ix_intake_requests_team_id", "intake_requests")
    op.drop_table("intake_requests")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("content")
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("message_email")
    # The NULL constraints stay dropped: rows without an owner may exist by now.
