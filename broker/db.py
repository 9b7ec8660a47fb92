"""The schema and the async engine. SQLite by default; PostgreSQL through the same Core statements.

The schema is changed only by Alembic migrations in ``broker/migrations``, which run at start-up.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from . import sqlite
from .schema import broker_meta


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; NORMAL still survives a process crash.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # Checkpoints run on a thread of their own, not inside a commit (broker/sqlite.py).
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        # One connection: SQLite has one writer anyway, and a single connection rules out
        # "database is locked" between our own transactions. Statements run on the
        # event loop's thread (broker/sqlite.py).
        engine = create_async_engine(url, pool_size=1, max_overflow=0,
                                     async_creator=sqlite.connector(url))
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10)


def create_reader(url: str) -> AsyncEngine | None:
    """For SQLite, an engine for long reads (history searches) whose statements run on a
    thread of their own (aiosqlite's), beside the event loop's connection: WAL lets it
    read while that one writes. None for other databases, whose engine never blocks the
    loop."""
    if not url.startswith("sqlite"):
        return None

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    engine = create_async_engine(url, pool_size=1, max_overflow=0)
    event.listen(engine.sync_engine, "connect", pragmas)
    return engine


# Any fixed number: the advisory lock that serialises migrations of one database.
_MIGRATION_LOCK = 0x5B_0B_0B_01


def _alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    return config


async def cluster_id(engine: AsyncEngine) -> str:
    """This database's random id, made by the first node that asks (several may race)."""
    for _ in range(3):
        async with engine.connect() as conn:
            found = await conn.scalar(sa.select(broker_meta.c.value).where(
                broker_meta.c.name == "cluster_id"))
        if found is not None:
            return str(found)
        try:
            async with engine.begin() as conn:
                await conn.execute(broker_meta.insert().values(
                    name="cluster_id", value=secrets.token_hex(8)))
        except sa.exc.IntegrityError:
            continue  # another node made it first: read theirs
    raise RuntimeError("could not read or make the cluster id")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration. Safe to run on every start, also by
    several nodes at once: on PostgreSQL they take turns (an advisory lock held until the
    migrating transaction commits), and who comes second finds nothing left to do."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": _MIGRATION_LOCK})
        await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "head"))
