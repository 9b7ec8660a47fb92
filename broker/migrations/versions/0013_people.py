"""Technicians' accounts (disabled, one-time passwords, revoked tokens) and session history
(who took part, the searchable words, newest-first order).

- `session_members` is kept by triggers: on a new session (its owner; sessions a customer
  started have none yet), on a new owner (`UPDATE OF technician_id`) and on a technician
  joining (`session_technicians`). A
  later migration that makes SQLite copy `sessions` or `session_technicians` (a batch
  operation with recreate) drops their triggers and must create them again.
- `session_texts` holds the words (broker/sessions/search.py); SQLite indexes them in the
  FTS5 table `session_texts_fts` (external content: rows added by search.insert, removed
  by a trigger; its vocabulary in
  `session_texts_vocab` says how often a word occurs), PostgreSQL in a GIN index on the
  stored column ``doc`` (``to_tsvector('simple', body)``).
- Existing sessions are filled in: members from owners, collaborators and transfers;
  words from chat lines, names, notes and transfer notes.

Revision ID: 0013
"""

import json

import sqlalchemy as sa
from alembic import op

from broker.sessions.search import words

revision = "0013"
down_revision = "0012"

_SQLITE = [
    "CREATE VIRTUAL TABLE session_texts_fts USING fts5(body, content='session_texts', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
    "CREATE VIRTUAL TABLE session_texts_vocab USING fts5vocab(session_texts_fts, row)",
    "CREATE TRIGGER session_texts_removed AFTER DELETE ON session_texts BEGIN "
    "INSERT INTO session_texts_fts (session_texts_fts, rowid, body) "
    "VALUES ('delete', old.id, old.body); END",
    "CREATE TRIGGER session_members_owner AFTER INSERT ON sessions "
    "WHEN new.technician_id IS NOT NULL BEGIN "
    "INSERT OR IGNORE INTO session_members (technician_id, session_id) "
    "VALUES (new.technician_id, new.id); END",
    "CREATE TRIGGER session_members_new_owner AFTER UPDATE OF technician_id ON sessions "
    "WHEN new.technician_id IS NOT old.technician_id AND new.technician_id IS NOT NULL BEGIN "
    "INSERT OR IGNORE INTO session_members (technician_id, session_id) "
    "VALUES (new.technician_id, new.id); END",
    "CREATE TRIGGER session_members_joined AFTER INSERT ON session_technicians BEGIN "
    "INSERT OR IGNORE INTO session_members (technician_id, session_id) "
    "VALUES (new.technician_id, new.session_id); END",
]
_POSTGRESQL = [
    # Stored, so that checking a row (session by session) does not parse its text again.
    "ALTER TABLE session_texts ADD COLUMN doc tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, body)) STORED",
    # New entries wait in a pending list that every search reads through: 256 kB keeps
    # that to a few milliseconds (the default 4 MB cost searches 0.5 s after 40,000 chat
    # lines); inserts flush it more often, for about 10 % more (docs/benchmarks.md).
    "CREATE INDEX ix_session_texts_search ON session_texts USING gin (doc) "
    "WITH (gin_pending_list_limit = 256)",
    "CREATE FUNCTION session_members_owner() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO session_members (technician_id, session_id) "
    "VALUES (NEW.technician_id, NEW.id) ON CONFLICT DO NOTHING; RETURN NULL; END $$",
    "CREATE FUNCTION session_members_joined() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO session_members (technician_id, session_id) "
    "VALUES (NEW.technician_id, NEW.session_id) ON CONFLICT DO NOTHING; RETURN NULL; END $$",
    "CREATE TRIGGER session_members_owner AFTER INSERT ON sessions "
    "FOR EACH ROW WHEN (NEW.technician_id IS NOT NULL) EXECUTE FUNCTION session_members_owner()",
    "CREATE TRIGGER session_members_new_owner AFTER UPDATE OF technician_id ON sessions "
    "FOR EACH ROW WHEN (NEW.technician_id IS DISTINCT FROM OLD.technician_id "
    "AND NEW.technician_id IS NOT NULL) "
    "EXECUTE FUNCTION session_members_owner()",
    "CREATE TRIGGER session_members_joined AFTER INSERT ON session_technicians "
    "FOR EACH ROW EXECUTE FUNCTION session_members_joined()",
]
_CHUNK = 5000


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN, also on SQLite: a batch operation would copy the
    # table, and dropping the old `technicians` fails while other tables point at it.
    op.add_column("technicians", sa.Column("disabled_at", sa.Float))
    op.add_column("technicians", sa.Column("must_change_password", sa.Boolean, nullable=False,
                                           server_default=sa.false()))
    op.add_column("api_tokens", sa.Column("revoked_at", sa.Float))
    op.create_index("ix_sessions_created", "sessions", ["created_at", "id"])
    op.create_table(
        "session_members",
        sa.Column("technician_id", sa.Integer, sa.ForeignKey("technicians.id"),
                  primary_key=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
                  primary_key=True, index=True),
    )
    op.create_table(
        "session_texts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("sessions.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    bind = op.get_bind()
    for statement in _POSTGRESQL if bind.dialect.name == "postgresql" else _SQLITE:
        op.execute(statement)
    _fill(bind)
    if bind.dialect.name == "sqlite":
        op.execute("INSERT INTO session_texts_fts (session_texts_fts) VALUES ('rebuild')")


def _fill(bind: sa.Connection) -> None:
    """Members and words of the sessions stored before this migration."""
    bind.execute(sa.text(
        "INSERT INTO session_members (technician_id, session_id) "
        "SELECT technician_id, id FROM sessions WHERE technician_id IS NOT NULL "
        "UNION SELECT technician_id, session_id FROM session_technicians "
        "UNION SELECT from_technician_id, session_id FROM handoffs "
        "WHERE from_technician_id IS NOT NULL "
        "UNION SELECT decided_by, session_id FROM handoffs "
        "WHERE state = 'accepted' AND decided_by IS NOT NULL"))
    texts = sa.table("session_texts", sa.column("session_id"), sa.column("kind"),
                     sa.column("body"))
    rows = []
    for query, kind in (("SELECT id, end_user_name FROM sessions "
                         "WHERE end_user_name IS NOT NULL", "name"),
                        ("SELECT id, notes FROM sessions WHERE notes IS NOT NULL", "notes"),
                        ("SELECT session_id, note FROM handoffs", "handoff")):
        rows += [{"session_id": sid, "kind": kind, "body": words(text)}
                 for sid, text in bind.execute(sa.text(query))]
    _insert(bind, texts, rows)
    last = ("", 0)
    for _ in range(10**9):  # keyset pages over every chat line; ends when none are left
        batch = bind.execute(sa.text(
            "SELECT session_id, seq, body FROM events WHERE type = 'message' "
            "AND (session_id > :sid OR (session_id = :sid AND seq > :seq)) "
            "ORDER BY session_id, seq LIMIT :n"),
            {"sid": last[0], "seq": last[1], "n": _CHUNK}).all()
        if not batch:
            break
        last = (batch[-1].session_id, batch[-1].seq)
        _insert(bind, texts, [
            {"session_id": row.session_id, "kind": "message",
             "body": words(str(json.loads(row.body).get("data", {}).get("text", "")))}
            for row in batch])


def _insert(bind: sa.Connection, texts: sa.TableClause, rows: list[dict[str, str]]) -> None:
    rows = [row for row in rows if row["body"]]
    for start in range(0, len(rows), _CHUNK):
        bind.execute(texts.insert(), rows[start:start + _CHUNK])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for trigger, table in (("session_members_owner", "sessions"),
                               ("session_members_new_owner", "sessions"),
                               ("session_members_joined", "session_technicians")):
            op.execute(f"DROP TRIGGER {trigger} ON {table}")
        op.execute("DROP FUNCTION session_members_owner()")
        op.execute("DROP FUNCTION session_members_joined()")
    else:
        for trigger in ("session_members_owner", "session_members_new_owner",
                        "session_members_joined"):
            op.execute(f"DROP TRIGGER {trigger}")
        op.execute("DROP TABLE session_texts_vocab")
        op.execute("DROP TABLE session_texts_fts")
    op.drop_table("session_texts")
    op.drop_table("session_members")
    op.drop_index("ix_sessions_created", "sessions")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("revoked_at")
    with op.batch_alter_table("technicians") as batch:
        batch.drop_column("must_change_password")
        batch.drop_column("disabled_at")
