"""Downloads: the plaintext of a complete upload, decrypted and sent by a sending thread
of its own straight to the client's socket (`send`, when the edge can hand over the
socket), or else decrypted one batch at a time in a storing thread for the loop to send
(`read`)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator
from typing import Protocol

from ..errors import Gone
from .limits import Throttle
from .model import Upload
from .threads import BATCH_BYTES, worker_pool
from .uploads import Uploads

# Downloads sent from threads of their own at once (`send`). A slow client keeps its
# thread for as long as it takes (waiting, not computing), so the threads are apart from
# the two that store uploads, and a download beyond these goes through the loop (`read`).
SEND_THREADS = 4
# Plaintext a sending thread decrypts before it hands it to the socket in one call.
SEND_BYTES = 1024 * 1024


class PlaintextSink(Protocol):
    """Where a download's plaintext goes from a sending thread (the edge wraps the
    client's socket in one)."""

    def send(self, data: memoryview, stop: threading.Event) -> None:
        """Hand over all of `data`, blocking until the sink has taken it; the buffer is
        reused afterwards. Raises ConnectionError when the client is gone or takes nothing
        for too long, and soon after `stop` is set."""
        ...


class Sender:
    """Sends complete uploads to their downloaders. Owns the sending threads."""

    def __init__(self, uploads: Uploads) -> None:
        self._uploads = uploads
        self._pool = worker_pool(SEND_THREADS, "transfer-send")
        self._sending: set[threading.Event] = set()  # one stop flag per running `send`

    def interrupt(self) -> None:
        """Stop every download sent from a thread (its client resumes with a Range)."""
        for stop in self._sending:
            stop.set()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    async def read(self, upload: Upload, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """The plaintext of bytes [start, end) of a complete upload, in batches decrypted in
        a storing thread, the next one only once the consumer has taken this one: decrypting
        ahead of the socket made downloads about a quarter faster but kept both CPUs of a
        small machine busy and slowed the chat (docs/benchmarks.md). Use with
        contextlib.aclosing."""
        uploads = self._uploads
        key = uploads.keys.unwrap(upload.blob_id, upload.wrapped_key)
        try:
            reader = await uploads.in_thread(uploads.store.reader, upload.blob_id, key,
                                             upload.size)
        except FileNotFoundError as exc:
            raise Gone("This file is no longer stored.") from exc
        throttle = uploads.throttle()
        loop = asyncio.get_running_loop()
        batch: asyncio.Future[list[bytes]] | None = None
        try:
            for position in range(start, end, BATCH_BYTES):
                batch = loop.run_in_executor(
                    uploads.pool, reader.read, position, min(end, position + BATCH_BYTES))
                pieces = await asyncio.shield(batch)
                batch = None
                for piece in pieces:
                    yield piece
                await throttle.take(sum(len(piece) for piece in pieces), uploads.total)
        finally:
            if batch is not None:  # cancelled while it read: let it finish before closing
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await batch
            await asyncio.shield(loop.run_in_executor(uploads.pool, reader.close))

    @property
    def sending(self) -> int:
        """Downloads being sent from sending threads now."""
        return len(self._sending)

    async def send(self, upload: Upload, start: int, end: int, sink: PlaintextSink) -> bool:
        """Send the plaintext of bytes [start, end) of a complete upload to `sink` from a
        sending thread, which reads, decrypts and sends without the event loop: the loop
        handing every batch to the socket was what bounded downloads
        (docs/benchmarks.md). Returns False, having sent nothing, when every sending thread
        is busy (use `read` then). Raises ConnectionError when the sink gives up or the
        transfer is stopped (`interrupt`); when the caller is cancelled, the thread is
        stopped and waited for before the cancellation goes on."""
        if len(self._sending) >= SEND_THREADS:
            return False
        key = self._uploads.keys.unwrap(upload.blob_id, upload.wrapped_key)
        throttle = self._uploads.throttle()
        stop = threading.Event()
        self._sending.add(stop)
        try:
            future = asyncio.get_running_loop().run_in_executor(
                self._pool, self._send_range, upload, key, start, end, sink, stop, throttle)
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                stop.set()
                with contextlib.suppress(BaseException):
                    await future
                raise
        finally:
            self._sending.discard(stop)
        return True

    def _send_range(self, upload: Upload, key: bytes, start: int, end: int,
                    sink: PlaintextSink, stop: threading.Event, throttle: Throttle) -> None:
        """The body of `send`, in a sending thread. One buffer is decrypted into and sent
        again and again (fresh memory for every record cost page faults), and is wiped at
        the end, so no plaintext outlives the download."""
        try:
            reader = self._uploads.store.reader(upload.blob_id, key, upload.size)
        except FileNotFoundError as exc:
            raise Gone("This file is no longer stored.") from exc
        total = self._uploads.total
        plain = bytearray(min(SEND_BYTES, end - start))
        view = memoryview(plain)
        try:
            for position in range(start, end, SEND_BYTES):
                if stop.is_set():
                    raise ConnectionAbortedError("the download was stopped")
                batch = view[:min(SEND_BYTES, end - position)]
                reader.read_into(position, position + len(batch), batch)
                sink.send(batch, stop)
                delay = max(throttle.delay_for(len(batch)), total.delay_for(len(batch)))
                if delay > 0 and stop.wait(delay):
                    raise ConnectionAbortedError("the download was stopped")
        finally:
            reader.close()
            view.release()
            plain[:] = bytes(len(plain))
