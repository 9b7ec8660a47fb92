"""SQLite on the event loop's thread (broker/sqlite.py): where statements run, what a
checkpoint moves, and a write that waits for another process's transaction."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sqlite3
import threading
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from broker import sqlite
from broker.db import create_engine

ROWS = sa.Table("rows", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("body", sa.Text, nullable=False))


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(ROWS.metadata.create_all)
    yield engine
    await engine.dispose()


async def test_statements_run_on_the_loops_thread(engine: AsyncEngine) -> None:
    seen: list[int] = []
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert isinstance(raw, sqlite.InlineConnection)
        await raw.create_function("where_am_i", 0, lambda: seen.append(threading.get_ident()))
        await conn.execute(sa.text("SELECT where_am_i()"))
    assert seen == [threading.get_ident()]


async def test_rows_and_counts_come_back(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await conn.execute(ROWS.insert().values(body="one"))
        await conn.execute(ROWS.insert(), [{"body": "two"}, {"body": "three"}])
        changed = await conn.execute(ROWS.update().where(ROWS.c.id > 1).values(body="x"))
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(ROWS).order_by(ROWS.c.id))).all()
    assert first.inserted_primary_key == (1,)
    assert changed.rowcount == 2
    assert [(row.id, row.body) for row in rows] == [(1, "one"), (2, "x"), (3, "x")]


async def test_a_failed_transaction_leaves_nothing(engine: AsyncEngine) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(ROWS.insert().values(id=7, body="kept?"))
            await conn.execute(ROWS.insert().values(id=7, body="twice"))
    async with engine.connect() as conn:
        assert (await conn.scalar(sa.select(sa.func.count()).select_from(ROWS))) == 0


async def test_checkpoints_move_the_log_into_the_database_file(tmp_path: Path,
                                                               engine: AsyncEngine) -> None:
    path = tmp_path / "test.db"
    async with engine.begin() as conn:
        await conn.execute(ROWS.insert(), [{"body": "x" * 1000} for _ in range(6000)])
    # Commits no longer checkpoint (by default SQLite would have, past 1000 pages of log):
    # the rows are only in the write-ahead log so far.
    assert _size(path) < 100_000 < _size(Path(f"{path}-wal"))
    task = asyncio.create_task(sqlite.checkpoint_forever(path, interval=0.05))
    try:
        for _ in range(200):
            if _size(path) > 5_000_000:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert _size(path) > 5_000_000, "the checkpointer did not copy the log"


async def test_a_write_waits_for_another_process_transaction(tmp_path: Path,
                                                             engine: AsyncEngine) -> None:
    """The CLI writing while the server runs: the server's write waits, then succeeds."""
    other = sqlite3.connect(tmp_path / "test.db", isolation_level=None,
                            check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    other.execute("INSERT INTO rows (body) VALUES ('theirs')")
    release = threading.Timer(0.2, lambda: other.execute("COMMIT"))
    release.start()
    try:
        started = time.monotonic()
        async with engine.begin() as conn:
            await conn.execute(ROWS.insert().values(body="ours"))
        waited = time.monotonic() - started
    finally:
        release.join()
        other.close()
    async with engine.connect() as conn:
        bodies = (await conn.scalars(sa.select(ROWS.c.body).order_by(ROWS.c.id))).all()
    assert bodies == ["theirs", "ours"]
    assert waited >= 0.15


async def test_a_connection_returned_after_the_engine_was_disposed_is_closed_quietly(
        engine: AsyncEngine, caplog: pytest.LogCaptureFixture) -> None:
    # As at a shutdown: a task still holds a connection while the engine is disposed, and
    # checks it in to the pool that was discarded; nothing closes it but the collector.
    conn = await engine.connect()
    await conn.execute(sa.insert(ROWS).values(body="last"))
    await conn.commit()
    raw = (await conn.get_raw_connection()).driver_connection
    assert isinstance(raw, sqlite.InlineConnection)
    thread = raw._thread
    await engine.dispose()
    await conn.close()
    del conn, raw
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)  # aiosqlite's own warning fails here
        gc.collect()
    assert "collected unclosed; closed it" in caplog.text
    thread.join(5)
    assert not thread.is_alive()  # its thread ended too (aiosqlite's would wait for ever)
    async with engine.connect() as again:  # the engine goes on with a new pool
        assert await again.scalar(sa.select(ROWS.c.body)) == "last"
