"""SQLite's history search index is brought up to date in bulk (broker/sessions/search.py):
the table `search_indexed` holds its mark, the last `session_texts` row it indexed. Every
row stored before this migration is indexed. PostgreSQL indexes each row as it is
inserted and has no mark.

Revision ID: 0021
"""

from alembic import op

revision = "0021"
down_revision = "0020"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE TABLE search_indexed (up_to INTEGER NOT NULL)")
    op.execute("INSERT INTO search_indexed (up_to) "
               "SELECT coalesce(max(id), 0) FROM session_texts")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # Revision 0020 indexes every row as it is stored: index what waits, then forget the mark.
    op.execute("INSERT INTO session_texts_fts (rowid, body) SELECT id, body "
               "FROM session_texts WHERE id > (SELECT up_to FROM search_indexed)")
    op.execute("DROP TABLE search_indexed")
