"""File bodies moved by worker threads straight between the client's socket and the
domain, without the event loop.

The event loop handing a download to the socket piece by piece was what bounded
downloads, and the loop receiving an upload piece by piece (aiohttp's parser copying
each one) was what stalled the chat during uploads (docs/benchmarks.md, "File
transfer"). So, as asyncio's own ``loop.sendfile`` does for files, the loop stops
reading the connection and lends the socket to a thread:

- **Downloads** (`lent_socket`, `SocketSink`): once the response's headers have left the
  transport's buffer, the thread writes the body and waits for room in the kernel's
  buffer with ``poll``; then the loop takes the socket back, aiohttp finishes the
  response, and the connection stays open for the next request.
- **Uploads** (`lent_body`, `SocketSource`): the loop hands over what it had already
  received of the body, and threads read the rest, exactly `Content-Length` bytes, each
  read waiting with ``poll``. aiohttp's parser never sees those bytes, so this connection
  carries no further request: the response closes it.

Threads use a duplicate of the socket's file descriptor: should the transport close its
own meanwhile, the number cannot be reused under a thread. Only for sockets the loop
reads and writes as they are: when aiohttp itself speaks TLS the bytes must go through
its SSL transport, and the caller uses the loop instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import select
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Final

from aiohttp import hdrs, web

# A client that takes nothing, or sends nothing, for this long counts as gone.
IDLE_SECONDS: Final = 120.0
# How often a thread waiting for the socket looks at its stop flag.
POLL_MILLISECONDS: Final = 50
# A read hands over what it has once no more arrived for this long, or after the second
# (what an upload stored shows as progress).
PIECE_PAUSE_MILLISECONDS: Final = 20
PIECE_SECONDS: Final = 1.0
# Bodies shorter than this are read by the loop, and the connection stays open.
LEND_MIN_BYTES: Final = 4 * 1024 * 1024
# Why the reading of an upload's body stopped before its end (a thread's or the loop's).
STOPPED_READING: Final = ("reading this upload was stopped: a newer request took it over, "
                          "its session ended, or the broker shuts down")
# Marks a request whose body threads read: its response closes the connection.
BODY_LENT: Final = web.RequestKey("body_lent", bool)
# How long a handler waits for the headers to leave the transport's buffer before it
# sends through the loop instead (they leave at once unless the client reads nothing).
FLUSH_SECONDS: Final = 5.0
FLUSH_POLL_SECONDS: Final = 0.002


class SocketSink:
    """Writes a response body to a non-blocking socket from a worker thread (the
    domain's PlaintextSink). `counted` is told every byte the kernel took."""

    def __init__(self, sock: socket.socket, counted: Callable[[int], None], *,
                 idle_seconds: float = IDLE_SECONDS) -> None:
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
                _wait(poller, stop, self._idle_seconds, stopped="the download was stopped",
                      idle="the client took nothing for too long")
                continue
            except ConnectionError:
                raise
            except OSError as exc:  # e.g. ETIMEDOUT from TCP keepalive
                raise ConnectionResetError(exc.errno, f"sending failed: {exc.strerror}") \
                    from exc
            data = data[written:]
            self.sent += written
            self._counted(written)


def _plain_socket(request: web.Request) -> socket.socket | None:
    """The connection's socket when threads may use it directly."""
    transport = request.transport
    if transport is None or transport.is_closing() \
            or transport.get_extra_info("sslcontext") is not None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None or sock.type != socket.SOCK_STREAM or sock.fileno() < 0:
        return None
    return sock  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def lent_socket(request: web.Request) -> AsyncIterator[socket.socket | None]:
    """The connection's socket (a duplicate) for a worker thread to write the body of the
    prepared response to, or None when it cannot be lent: TLS spoken by aiohttp, no
    plain socket, a closing transport, or headers the client does not take. Meanwhile
    the loop neither reads nor writes the connection; afterwards reading resumes."""
    lent = _plain_socket(request)
    transport = request.transport
    if lent is None or transport is None:
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


class SocketSource:
    """The rest of a request's body, read straight from a non-blocking socket by
    receiving threads (the domain's ByteSource). One read at a time; each starts a
    thread with `start` and waits for it, also when cancelled (the thread then stops
    within POLL_MILLISECONDS). `counted` is told every byte handed over."""

    def __init__(self, sock: socket.socket, prefix: bytes, remaining: int,
                 start: Callable[[Callable[[], bytearray]], asyncio.Future[bytearray]],
                 counted: Callable[[int], None], *, idle_seconds: float = IDLE_SECONDS) -> None:
        self._sock = sock
        self._prefix = prefix
        self.remaining = remaining
        self._start = start
        self._counted = counted
        self._idle_seconds = idle_seconds
        self._stop = threading.Event()
        self._closed = False  # the client closed its side before the end of the body

    async def read(self, size: int) -> bytes | bytearray:
        data: bytes | bytearray
        if self._prefix:
            data, self._prefix = self._prefix[:size], self._prefix[size:]
        elif not self.remaining:
            return b""
        else:
            future = self._start(functools.partial(self._receive, min(size, self.remaining)))
            try:
                data = await asyncio.shield(future)
            except asyncio.CancelledError:
                self._stop.set()
                with contextlib.suppress(BaseException):
                    await future
                raise
            self.remaining -= len(data)
        self._counted(len(data))
        return data

    def abort(self) -> None:
        self._stop.set()

    def _receive(self, size: int) -> bytearray:
        """In a receiving thread: up to `size` bytes, once some arrived and no more follow
        at once (or the piece is full, or PIECE_SECONDS passed)."""
        if self._closed:
            raise ConnectionResetError("the client closed the connection before the end "
                                       "of the body")
        buffer = bytearray(size)
        view = memoryview(buffer)
        poller = select.poll()
        poller.register(self._sock, select.POLLIN)
        got = 0
        handover = time.monotonic() + PIECE_SECONDS
        try:
            while got < size:
                if self._stop.is_set():
                    raise ConnectionAbortedError(STOPPED_READING)
                try:
                    received = self._sock.recv_into(view[got:])
                except BlockingIOError:
                    if not got:
                        _wait(poller, self._stop, self._idle_seconds, stopped=STOPPED_READING,
                              idle="the client sent nothing for too long")
                    elif not poller.poll(PIECE_PAUSE_MILLISECONDS) \
                            or time.monotonic() > handover:
                        break
                    continue
                except ConnectionError:
                    raise
                except OSError as exc:  # e.g. ETIMEDOUT from TCP keepalive
                    raise ConnectionResetError(exc.errno, f"receiving failed: {exc.strerror}") \
                        from exc
                if not received:  # hand over what came, the next read reports the end
                    self._closed = True
                    if not got:
                        raise ConnectionResetError("the client closed the connection before "
                                                   "the end of the body")
                    break
                got += received
        finally:
            view.release()
        del buffer[got:]
        return buffer


def _wait(poller: select.poll, stop: threading.Event, idle_seconds: float, *, stopped: str,
          idle: str) -> None:
    """In a thread: until the socket is ready (or has failed: the next send or receive says
    how), `stop` is set, or `idle_seconds` pass."""
    deadline = time.monotonic() + idle_seconds
    while not poller.poll(POLL_MILLISECONDS):
        if stop.is_set():
            raise ConnectionAbortedError(stopped)
        if time.monotonic() > deadline:
            raise ConnectionResetError(errno.ETIMEDOUT, idle)
    if stop.is_set():
        raise ConnectionAbortedError(stopped)


@contextlib.contextmanager
def lent_body(request: web.Request,
              start: Callable[[Callable[[], bytearray]], asyncio.Future[bytearray]] | None,
              counted: Callable[[int], None]) -> Iterator[SocketSource | None]:
    """The rest of the request's body as a SocketSource whose reads run in threads from
    `start`, or None when the loop should read it: no `start` (every thread taken), a
    body under LEND_MIN_BYTES or without Content-Length, TLS spoken by aiohttp, no plain
    socket. Meanwhile the loop does not read the connection. The response closes it
    (`close_lent`). A body read to its end is marked as such, so aiohttp does not wait
    for more; otherwise reading resumes and aiohttp drains what the client still sends
    before it closes, so that the client gets the response."""
    length = request.content_length
    lent = _plain_socket(request)
    transport = request.transport
    if start is None or length is None or length < LEND_MIN_BYTES or lent is None \
            or transport is None:
        yield None
        return
    # No await from here on until the loop stops reading: what the loop received so far
    # is all in request.content, and nothing more arrives there. (Taking it lets aiohttp
    # resume reading if its buffer was full; the next line stops that again.)
    prefix = request.content.read_nowait(-1)
    transport.pause_reading()
    request[BODY_LENT] = True
    source: SocketSource | None = None
    try:
        with lent.dup() as sock:
            source = SocketSource(sock, prefix, length - len(prefix), start, counted)
            yield source
    finally:
        if source is not None and not source.remaining:
            request.content.feed_eof()
        elif not transport.is_closing():
            transport.resume_reading()


async def close_lent(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the response to a request whose body threads read closes the
    connection (aiohttp's parser still waits for that body)."""
    if request.get(BODY_LENT):
        response.force_close()
        # Said too: aiohttp has chosen its headers by the time this hook runs.
        response.headers[hdrs.CONNECTION] = "close"
