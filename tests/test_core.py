"""Broker.open: every part built and started in one place, and undone when a step fails;
worker loops that end when cancelled."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from broker.bus import LocalBus
from broker.clock import nap
from broker.core import Broker
from broker.settings import Settings


def _settings(tmp_path: Path, database_url: str, failure: str) -> Settings:
    if failure == "transfer_dir":
        # The transfer service starts after the database, the bus and the journal.
        (tmp_path / "a-file").write_text("not a directory")
        return Settings(data_dir=tmp_path / "data", database_url=database_url,
                        transfer_dir=str(tmp_path / "a-file" / "files"))
    # Several nodes need the Redis bus: given another, the last step of open() fails.
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    redis_url="redis://127.0.0.1:1")


@pytest.mark.parametrize(("failure", "error"), [("transfer_dir", OSError),
                                                ("redis_bus", TypeError)])
async def test_a_failed_open_stops_what_it_started(tmp_path: Path, database_url: str,
                                                    failure: str,
                                                    error: type[Exception]) -> None:
    settings = _settings(tmp_path, database_url, failure)
    tasks = asyncio.all_tasks()
    threads = set(threading.enumerate())
    with pytest.raises(error):
        await Broker.open(settings, bus=LocalBus())
    # The journal's writer, the transfer threads and the database connection (SQLite's
    # runs a thread of its own) are gone.
    assert asyncio.all_tasks() <= tasks
    for thread in set(threading.enumerate()) - threads:
        thread.join(timeout=5)
        assert not thread.is_alive(), thread.name



async def test_a_worker_whose_cancellation_was_swallowed_ends_at_its_next_nap() -> None:
    # The delivery worker hung a broker's close now and then: something below it turned
    # the cancellation into an error of its own, which the loop's `except Exception` took.
    wakeup, busy = asyncio.Event(), asyncio.Event()

    async def worker() -> None:
        while True:
            try:
                busy.set()
                await asyncio.sleep(10)   # the work, cancelled here
            except asyncio.CancelledError:
                pass                      # and swallowed
            await nap(wakeup, 10)

    task = asyncio.create_task(worker())
    await busy.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(2):    # without nap's check: a TimeoutError after 2 s
            await task
