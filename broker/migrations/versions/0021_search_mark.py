"""SQLite's history search stores its chat lines' words and indexes its texts in bulk
(broker/sessions/search.py): the table `search_indexed` holds its marks, the last event
read (`events_up_to`, a rowid of `events`) and the last `session_texts` row indexed
(`up_to`). Everything stored before this migration has its words and is indexed.
PostgreSQL stores and indexes each row with its event and has no marks.

Revision ID: 0021
"""

import sqlalchemy as sa
from alembic import op

from broker.sessions.search import message_row

revision = "0021"
down_revision = "0020"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE TABLE search_indexed (events_up_to INTEGER NOT NULL, "
               "up_to INTEGER NOT NULL)")
    op.execute("INSERT INTO search_indexed (events_up_to, up_to) "
               "SELECT (SELECT coalesce(max(rowid), 0) FROM events), "
               "(SELECT coalesce(max(id), 0) FROM session_texts)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    # Revision 0020 stores and indexes each text with its event: catch up first.
    lines = bind.execute(sa.text(
        "SELECT session_id, body FROM events WHERE type = 'message' "
        "AND rowid > (SELECT events_up_to FROM search_indexed) ORDER BY rowid")).all()
    rows = [row for line in lines if (row := message_row(line.session_id, line.body))]
    if rows:
        bind.execute(sa.text("INSERT INTO session_texts (session_id, kind, body) "
                             "VALUES (:session_id, :kind, :body)"), rows)
    op.execute("INSERT INTO session_texts_fts (rowid, body) SELECT id, body "
               "FROM session_texts WHERE id > (SELECT up_to FROM search_indexed)")
    op.execute("DROP TABLE search_indexed")
