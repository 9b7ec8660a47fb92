"""Alembic runs migrations on the connection the broker hands it (see broker.db.migrate)."""

from alembic import context

from broker.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
