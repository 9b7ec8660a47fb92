"""The worker threads of file transfer: pools at a lower CPU priority than the event loop,
and a way to run blocking file work in them that survives the caller's cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

# What the event loop hands to a worker thread at once, and asks a source for. Every
# batch costs two thread hops, and on a busy machine a hop can wait milliseconds for a
# CPU, so batches are large; an upload holds two (one being stored while the next
# arrives), a download one.
BATCH_BYTES = 1024 * 1024
WORKER_NICE = 10  # see _lower_priority


def worker_pool(max_workers: int, name: str) -> ThreadPoolExecutor:
    """Threads named `name` that run below the event loop's priority."""
    return ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name,
                              initializer=_lower_priority)


async def in_thread(pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
    """Run blocking file work in a thread of `pool`. When the caller is cancelled the
    thread still finishes what it started before the cancellation goes on."""
    future = asyncio.get_running_loop().run_in_executor(pool, fn, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await future
        raise


def _lower_priority() -> None:
    """Run a worker thread at a lower CPU priority than the event loop and the database.

    Hashing, encrypting and writing a fast transfer keep a CPU busy. On a small machine
    that CPU is also the chat's, and the chat's threads then wait for it behind the
    transfer (chat p99 over 50 ms during a 1 GiB upload on two cores, in
    bench/transfer.py). With a nice value the kernel lets them go first and the transfer
    takes the rest, at no measurable cost to its throughput. Linux sets it per thread.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
