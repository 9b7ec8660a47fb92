"""A response body sent by a worker thread straight to the client's socket.

The event loop handing a download to the socket piece by piece was what bounded downloads
(docs/benchmarks.md, "File transfer"). So, as asyncio's own ``loop.sendfile`` does for
files, once the response's headers have left the transport's buffer the loop stops
reading the connection and lends the socket to a thread, which writes the body itself
and waits for room in the kernel's buffer with ``poll``; then the loop takes the socket
back, aiohttp finishes the response, and the connection stays open for the next request.
The thread writes through a duplicate of the socket's file descriptor: should the
transport close its own meanwhile, the number cannot be reused under the thread.

Only for sockets the loop writes to as they are: when aiohttp itself speaks TLS the bytes
must go through its SSL transport, and the caller sends through the loop instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import select
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Final

from aiohttp import web

# A client that takes nothing for this long counts as gone (as an upload's idle body).
IDLE_WRITE_SECONDS: Final = 120.0
# How often a thread waiting for room in the socket's buffer looks at its stop flag.
POLL_MILLISECONDS: Final = 50
# How long a handler waits for the headers to leave the transport's buffer before it
# sends through the loop instead (they leave at once unless the client reads nothing).
FLUSH_SECONDS: Final = 5.0
FLUSH_POLL_SECONDS: Final = 0.002


class SocketSink:
    """Writes a response body to a non-blocking socket from a worker thread (the
    domain's PlaintextSink). `counted` is told every byte the kernel took."""

    def __init__(self, sock: socket.socket, counted: Callable[[int], None], *,
                 idle_seconds: float = IDLE_WRITE_SECONDS) -> None:
        self._sock = sock
        self._counted = counted
        self._idle_seconds = idle_seconds
        self.sent = 0

    def send(self, data: memoryview, stop: threading.Event) -> None:
        poller: select.poll | None = None
        while data:
            try:
                # MSG_NOSIGNAL: a client that hung up is an EPIPE here, never a SIGPIPE.
                written = self._sock.send(data, socket.MSG_NOSIGNAL)
            except BlockingIOError:
                if poller is None:
                    poller = select.poll()
                    poller.register(self._sock, select.POLLOUT)
                self._wait(poller, stop)
                continue
            except ConnectionError:
                raise
            except OSError as exc:  # e.g. ETIMEDOUT from TCP keepalive
                raise ConnectionResetError(exc.errno, f"sending failed: {exc.strerror}") \
                    from exc
            data = data[written:]
            self.sent += written
            self._counted(written)

    def _wait(self, poller: select.poll, stop: threading.Event) -> None:
        """Until the socket takes more (or has failed: the next send says how)."""
        deadline = time.monotonic() + self._idle_seconds
        while not poller.poll(POLL_MILLISECONDS):
            if stop.is_set():
                raise ConnectionAbortedError("the download was stopped")
            if time.monotonic() > deadline:
                raise ConnectionResetError(errno.ETIMEDOUT,
                                           "the client took nothing for too long")
        if stop.is_set():
            raise ConnectionAbortedError("the download was stopped")


@contextlib.asynccontextmanager
async def lent_socket(request: web.Request) -> AsyncIterator[socket.socket | None]:
    """The connection's socket (a duplicate) for a worker thread to write the body of the
    prepared response to, or None when it cannot be lent: TLS spoken by aiohttp, no
    plain socket, a closing transport, or headers the client does not take. Meanwhile
    the loop neither reads nor writes the connection; afterwards reading resumes."""
    transport = request.transport
    if transport is None or transport.is_closing() \
            or transport.get_extra_info("sslcontext") is not None:
        yield None
        return
    lent = transport.get_extra_info("socket")
    if lent is None or lent.type != socket.SOCK_STREAM or lent.fileno() < 0:
        yield None
        return
    # The headers (and anything else queued) must reach the kernel before the thread's
    # bytes do. They almost always went out in prepare(); asyncio offers no public wait
    # for an empty buffer, and a short poll costs nothing in the rare other case.
    deadline = asyncio.get_running_loop().time() + FLUSH_SECONDS
    while transport.get_write_buffer_size():
        if transport.is_closing() or asyncio.get_running_loop().time() > deadline:
            yield None
            return
        await asyncio.sleep(FLUSH_POLL_SECONDS)
    # Not reading: the loop would otherwise parse what the client sends next, or notice
    # the client leaving and close the transport, while the thread owns the socket.
    reading = transport.is_reading()
    if reading:
        transport.pause_reading()
    try:
        with lent.dup() as sock:
            yield sock
    finally:
        if reading and not transport.is_closing():
            transport.resume_reading()
