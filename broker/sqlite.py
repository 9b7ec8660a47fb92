"""SQLite on the event loop's thread, with checkpoints on a thread of their own.

SQLAlchemy's aiosqlite adapter sends every step of a statement (make a cursor, execute,
fetch the rows, close the cursor) to aiosqlite's thread and waits for the answer: three
or four trips per statement, each waking that thread and then the event loop, and each
waiting for the GIL. A statement of ours takes 10 to 50 µs in SQLite; a trip cost more
than that, and since the broker's one connection is held meanwhile, every other request
waited too (docs/benchmarks.md: key create + join and chat were bound by these trips).
`InlineConnection` is aiosqlite's connection whose work runs at once on the caller's
thread, so SQLAlchemy's awaits complete without suspending.

What that costs: a statement holds up the event loop while it runs. Ours are short
(index lookups, small inserts; commits append to the write-ahead log without fsync,
``synchronous=NORMAL``). What could take long is kept off the loop:

- Checkpoints (copying the write-ahead log into the database file, with fsyncs): the
  connection's automatic checkpoints are off (``wal_autocheckpoint=0``, set with the
  other pragmas in broker/db.py) and `checkpoint_forever` runs a passive checkpoint every
  second from a thread with a connection of its own.
- Another process writing the same file (the ``supportbroker`` CLI while the server
  runs) makes a write wait for it (``busy_timeout``) on the loop's thread; those
  transactions take milliseconds.

Several engines on one file in one process (tests) do not wait for each other: an
inline statement never yields to the loop, so one engine's transaction cannot be left
half done while another engine writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 1.0
_STOP = aiosqlite.core._STOP_RUNNING_SENTINEL  # what ends an aiosqlite connection's thread


class InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection with its work done on the calling thread. Its own thread
    still opens and closes the SQLite connection (and serves SQLAlchemy's isolation
    level setter, which talks to that thread's queue directly)."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")  # the words aiosqlite and SQLAlchemy know
        return fn(*args, **kwargs)

    def stop(self) -> asyncio.Future[Any] | None:
        """A forced close (SQLAlchemy's terminate, as for a connection whose task was
        cancelled in a statement) closes the SQLite connection here and now, where all its
        work is done anyway, instead of leaving it to the thread: the object could be
        collected first, and aiosqlite then warns that it was never closed."""
        self._close_here()
        return super().stop()

    def __del__(self) -> None:
        """Collected unclosed (a connection checked in to a pool that was disposed
        meanwhile, say, as at a shutdown): its work all ran on the caller's thread, so
        nothing is pending; close it and end its thread (aiosqlite would only warn, and
        leave the thread waiting for ever)."""
        if self._connection is None:
            return
        self._close_here()
        self._running = False
        self._tx.put_nowait((None, lambda: _STOP))
        with contextlib.suppress(Exception):  # logging may be gone at interpreter exit
            log.warning("an SQLite connection was collected unclosed; closed it")

    def _close_here(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None


def connector(url: str) -> Callable[[], Awaitable[InlineConnection]]:
    """SQLAlchemy's `async_creator` for an SQLite URL: an `InlineConnection` opened with
    the arguments the aiosqlite dialect would pass to `sqlite3.connect`."""
    args, kwargs = SQLiteDialect_aiosqlite().create_connect_args(make_url(url))
    # Opened on aiosqlite's thread, used on the loop's: one at a time, never at once.
    kwargs["check_same_thread"] = False

    async def connect() -> InlineConnection:
        connection = InlineConnection(functools.partial(sqlite3.connect, *args, **kwargs),
                                      iter_chunk_size=64)
        connection._thread.daemon = True  # as SQLAlchemy does: never hold up the exit
        await connection
        return connection

    return connect


def database_path(url: str) -> Path | None:
    """The file of an SQLite URL; None for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _checkpoint(conn: sqlite3.Connection) -> None:
    # PASSIVE: copies what no reader still needs, never waits for or blocks a writer.
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


async def checkpoint_forever(path: Path, interval: float = CHECKPOINT_SECONDS) -> None:
    """Keep the write-ahead log short, off the event loop. Runs until cancelled; a
    failed checkpoint is logged and tried again (the log only grows meanwhile)."""
    loop = asyncio.get_running_loop()
    conn = await asyncio.to_thread(sqlite3.connect, path, check_same_thread=False)
    running: asyncio.Future[None] | None = None
    try:
        while True:
            await asyncio.sleep(interval)
            running = loop.run_in_executor(None, _checkpoint, conn)
            try:
                await asyncio.shield(running)
            except sqlite3.Error:
                log.exception("checkpoint of %s failed; trying again", path)
            running = None
    finally:
        if running is not None:  # cancelled during a checkpoint: its thread still uses conn
            await asyncio.wait([running])
        conn.close()
