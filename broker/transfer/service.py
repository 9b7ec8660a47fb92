"""Files sent in a session: created, appended to (resumably), checked, offered, cancelled,
expired and removed. Knows nothing of HTTP; `web/files.py` speaks tus on its behalf.

Data streams through in batches: the event loop only reads the socket and hands each
batch (1 MiB) to a worker thread that hashes, encrypts and writes it while the loop
reads the next one. A download is decrypted and sent by a sending thread of its own
straight to the client's socket (`send`, when the edge can hand over the socket), or else
decrypted one batch at a time in a worker thread for the loop to send (`read`). A transfer
never holds the loop for more than a memory copy, and memory stays at a few batches per
transfer whatever the file's size. Optional rate caps (per transfer and in total) slow
the socket reads down, and TCP slows the sender.

Only one request writes an upload at a time. A new request for an upload whose previous
request is still running (the client lost that connection and resumes, but the broker
has not noticed yet) takes over: the old request stops reading, keeps what it received,
and the new one continues from there.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import errno
import functools
import hashlib
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..bus import EventBus
from ..clock import Clock
from ..db import sessions, transfers
from ..errors import (
    BrokerError,
    ChecksumMismatch,
    Conflict,
    Forbidden,
    Gone,
    InsufficientStorage,
    InvalidInput,
    NotFound,
    TooLarge,
    TypeNotAllowed,
)
from ..protocol.transfer import FileProgress
from ..sessions import Actor, Journal, Role, SessionState, Signal, session_topic
from ..settings import Settings
from .limits import OCTET_STREAM, SNIFF_BYTES, Limits, Throttle, content_type, parse_allowed, sniff
from .model import Upload, UploadState, check_transition
from .names import display_name, extension_of
from .store import BlobStore, BlobWriter, KeyRing

log = logging.getLogger(__name__)
T = TypeVar("T")

# What the event loop hands to a worker thread at once, and asks a source for. Every
# batch costs two thread hops, and on a busy machine a hop can wait milliseconds for a
# CPU, so batches are large; an upload holds two (one being stored while the next
# arrives), a download one.
BATCH_BYTES = 1024 * 1024
# A long request commits (without fsync) this often, so a crash loses little of it.
COMMIT_EVERY = 64 * 1024 * 1024
PROGRESS_INTERVAL = 0.25
TAKEOVER_SECONDS = 10.0
# Idle partial uploads give back their open file and buffered tail after this long.
IDLE_SECONDS = 600.0
MAX_METADATA_CHARS = 4096
WORKER_NICE = 10  # see _lower_priority
# Downloads sent from threads of their own at once (`send`). A slow client keeps its
# thread for as long as it takes (waiting, not computing), so the threads are apart from
# the two that store uploads, and a download beyond these goes through the loop (`read`).
SEND_THREADS = 4
# Upload bodies read from threads of their own at once (`receiving`), for the same reason:
# an upload beyond these is read by the loop.
RECEIVE_THREADS = 4
# Plaintext a sending thread decrypts before it hands it to the socket in one call.
SEND_BYTES = 1024 * 1024
# Files in the transfer directory that no upload owns are removed at start once this old.
ORPHAN_AGE_SECONDS = 3600.0
CHECKSUM_ALGORITHMS = ("sha1", "sha256")


class ByteSource(Protocol):
    """Where an upload's bytes come from (the edge wraps a request body in one)."""

    async def read(self, size: int) -> bytes | bytearray:
        """The next piece of at most `size` bytes (a source may hand over the pieces it
        received as they are); empty at the end. Raises ConnectionError when cut off."""
        ...

    def abort(self) -> None:
        """Make a pending or later `read` raise ConnectionError (another request takes
        over the upload)."""
        ...


class PlaintextSink(Protocol):
    """Where a download's plaintext goes from a sending thread (the edge wraps the
    client's socket in one)."""

    def send(self, data: memoryview, stop: threading.Event) -> None:
        """Hand over all of `data`, blocking until the sink has taken it; the buffer is
        reused afterwards. Raises ConnectionError when the client is gone or takes nothing
        for too long, and soon after `stop` is set."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class RequestChecksum:
    """A checksum of one request's body (tus ``Upload-Checksum``)."""

    algorithm: str
    digest: bytes

    def __post_init__(self) -> None:
        if self.algorithm not in CHECKSUM_ALGORITHMS:
            raise InvalidInput(f"Checksums are {' or '.join(CHECKSUM_ALGORITHMS)}, not "
                               f"{self.algorithm[:20]!r}.", code="unsupported_checksum")


def parse_declared_sha256(value: str | None) -> str | None:
    """The whole-file checksum a sender declares: ``sha256 <base64>`` (or hex) -> hex."""
    if value is None or not value.strip():
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm.lower() != "sha256" or not encoded.strip():
        raise InvalidInput("A file checksum is 'sha256 <base64 digest>'.",
                           code="unsupported_checksum")
    encoded = encoded.strip()
    try:
        digest = bytes.fromhex(encoded) if len(encoded) == 64 else base64.b64decode(
            encoded, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise InvalidInput("The file checksum is not base64.",
                           code="unsupported_checksum") from exc
    if len(digest) != 32:
        raise InvalidInput("A SHA-256 digest has 32 bytes.", code="unsupported_checksum")
    return digest.hex()


@dataclasses.dataclass(slots=True)
class _Live:
    """An upload this node is receiving: its writer, and who may write it now."""

    upload: Upload
    writer: BlobWriter
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    source: ByteSource | None = None
    touched: float = 0.0
    progress_at: float = 0.0
    progress_offset: int = 0
    speed: float = 0.0


class TransferService:
    """The file-transfer domain. One per broker; owns its worker threads."""

    def __init__(self, settings: Settings, engine: AsyncEngine, journal: Journal,
                 bus: EventBus, clock: Clock, master_key: bytes, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._engine = engine
        self._journal = journal
        self._bus = bus
        self._clock = clock
        self._monotonic = monotonic
        self._keys = KeyRing(master_key)
        self._store = BlobStore(settings.transfer_path)
        self.limits = Limits(
            max_bytes=settings.transfer_max_bytes,
            allowed=parse_allowed(settings.transfer_allowed_types),
            session_quota_bytes=settings.transfer_session_quota_bytes,
            min_free_bytes=settings.transfer_min_free_bytes)
        self._total = Throttle(settings.transfer_total_rate_bytes_per_second,
                               monotonic=monotonic)
        # Few threads: each transfer uses one at a time, and each thread's malloc arena
        # keeps a few batches' worth of memory.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="transfer",
                                        initializer=_lower_priority)
        self._send_pool = ThreadPoolExecutor(max_workers=SEND_THREADS,
                                             thread_name_prefix="transfer-send",
                                             initializer=_lower_priority)
        self._sending: set[threading.Event] = set()  # one stop flag per running `send`
        self._receive_pool = ThreadPoolExecutor(max_workers=RECEIVE_THREADS,
                                                thread_name_prefix="transfer-receive",
                                                initializer=_lower_priority)
        self._receiving = 0
        self._live: dict[str, _Live] = {}
        self._create_lock = asyncio.Lock()
        self._load_lock = asyncio.Lock()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Prepare the directory and remove files that no live upload owns (left behind
        by a crash between the database and the disk)."""
        await self._in_thread(self._store.prepare)
        async with self._engine.connect() as conn:
            keep = set((await conn.scalars(sa.select(transfers.c.blob_id).where(
                transfers.c.state.in_([s.value for s in UploadState if s.has_data])))).all())
        stale = time.time() - ORPHAN_AGE_SECONDS  # file times are wall-clock times
        for blob_id in await self._in_thread(self._store.stored_ids, stale) - keep:
            log.info("removing transfer data %s that no upload owns", blob_id)
            await self._in_thread(self._store.remove, blob_id)

    def interrupt_all(self) -> None:
        """Stop every running upload's reading (each keeps what it received) and every
        download sent from a thread (its client resumes with a Range request)."""
        for live in list(self._live.values()):
            if live.source is not None:
                live.source.abort()
        for stop in self._sending:
            stop.set()

    async def close(self) -> None:
        """Stop running transfers (each upload keeps what it received) and the threads."""
        self.interrupt_all()
        self._send_pool.shutdown(wait=True)
        self._receive_pool.shutdown(wait=True)
        for live in list(self._live.values()):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TAKEOVER_SECONDS):
                    await live.lock.acquire()
            self._live.pop(live.upload.id, None)
            with contextlib.suppress(OSError):
                await self._in_thread(live.writer.close)
        self._pool.shutdown(wait=True)

    # -- reading -------------------------------------------------------------------------

    async def get(self, session_id: str, upload_id: str) -> Upload:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(transfers).where(
                transfers.c.id == upload_id, transfers.c.session_id == session_id))).first()
        if row is None:
            raise NotFound("No such file in this session.")
        return _upload_from_row(row)

    async def for_session(self, session_id: str) -> list[Upload]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(transfers).where(
                transfers.c.session_id == session_id).order_by(transfers.c.created_at))).all()
        return [_upload_from_row(row) for row in rows]

    async def downloadable(self, session_id: str, upload_id: str) -> Upload:
        """The upload, if it can be downloaded: complete and still stored."""
        upload = await self.get(session_id, upload_id)
        if upload.state is UploadState.COMPLETE:
            return upload
        if upload.state is UploadState.RECEIVING:
            raise NotFound("This file has not arrived completely yet.", code="not_complete")
        raise Gone(_gone_message(upload))

    async def read(self, upload: Upload, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """The plaintext of bytes [start, end) of a complete upload, in batches decrypted in
        a worker thread, the next one only once the consumer has taken this one: decrypting
        ahead of the socket made downloads about a quarter faster but kept both CPUs of a
        small machine busy and slowed the chat (docs/benchmarks.md). Use with
        contextlib.aclosing."""
        key = self._keys.unwrap(upload.blob_id, upload.wrapped_key)
        try:
            reader = await self._in_thread(self._store.reader, upload.blob_id, key, upload.size)
        except FileNotFoundError as exc:
            raise Gone("This file is no longer stored.") from exc
        throttle = Throttle(self._settings.transfer_rate_bytes_per_second,
                            monotonic=self._monotonic)
        loop = asyncio.get_running_loop()
        batch: asyncio.Future[list[bytes]] | None = None
        try:
            for position in range(start, end, BATCH_BYTES):
                batch = loop.run_in_executor(
                    self._pool, reader.read, position, min(end, position + BATCH_BYTES))
                pieces = await asyncio.shield(batch)
                batch = None
                for piece in pieces:
                    yield piece
                await throttle.take(sum(len(piece) for piece in pieces), self._total)
        finally:
            if batch is not None:  # cancelled while it read: let it finish before closing
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await batch
            await asyncio.shield(loop.run_in_executor(self._pool, reader.close))

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
        transfer is stopped (`interrupt_all`); when the caller is cancelled, the thread is
        stopped and waited for before the cancellation goes on."""
        if len(self._sending) >= SEND_THREADS:
            return False
        key = self._keys.unwrap(upload.blob_id, upload.wrapped_key)
        throttle = Throttle(self._settings.transfer_rate_bytes_per_second,
                            monotonic=self._monotonic)
        stop = threading.Event()
        self._sending.add(stop)
        try:
            future = asyncio.get_running_loop().run_in_executor(
                self._send_pool, self._send_range, upload, key, start, end, sink, stop,
                throttle)
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
            reader = self._store.reader(upload.blob_id, key, upload.size)
        except FileNotFoundError as exc:
            raise Gone("This file is no longer stored.") from exc
        plain = bytearray(min(SEND_BYTES, end - start))
        view = memoryview(plain)
        try:
            for position in range(start, end, SEND_BYTES):
                if stop.is_set():
                    raise ConnectionAbortedError("the download was stopped")
                batch = view[:min(SEND_BYTES, end - position)]
                reader.read_into(position, position + len(batch), batch)
                sink.send(batch, stop)
                delay = max(throttle.delay_for(len(batch)), self._total.delay_for(len(batch)))
                if delay > 0 and stop.wait(delay):
                    raise ConnectionAbortedError("the download was stopped")
        finally:
            reader.close()
            view.release()
            plain[:] = bytes(len(plain))

    @property
    def receiving(self) -> int:
        """Upload bodies being read in receiving threads now."""
        return self._receiving

    @contextlib.contextmanager
    def receiver(self) -> Iterator[Callable[[Callable[[], T]], asyncio.Future[T]] | None]:
        """For an edge that reads an upload's body without the event loop (the loop
        receiving every piece was what stalled the chat during uploads,
        docs/benchmarks.md): a way to start one blocking read in a receiving thread, or
        None when every receiving thread is taken (read through the loop then). A read
        waits for the client, so it runs in none of the threads that store; the caller
        waits for the thread it started, also when cancelled."""
        if self._receiving >= RECEIVE_THREADS:
            yield None
            return
        self._receiving += 1
        try:
            yield functools.partial(asyncio.get_running_loop().run_in_executor,
                                    self._receive_pool)
        finally:
            self._receiving -= 1

    # -- creating ------------------------------------------------------------------------

    async def create(self, session_id: str, sender: Actor, size: int, *, name: str,
                     checksum: str | None = None, metadata: str = "") -> Upload:
        """A new upload of `size` bytes, checked against every limit that can be checked
        before the first byte."""
        await self._check_session_open(session_id, sender)
        clean_name = display_name(name)
        self.limits.check_size(size)
        self.limits.check_extension(extension_of(clean_name))
        declared = parse_declared_sha256(checksum)
        if len(metadata) > MAX_METADATA_CHARS:
            raise InvalidInput(f"Upload-Metadata is limited to {MAX_METADATA_CHARS} characters.")
        async with self._create_lock:  # quota and disk space are checked and taken at once
            async with self._engine.connect() as conn:
                used = await conn.scalar(sa.select(sa.func.coalesce(
                    sa.func.sum(transfers.c.size), 0)).where(
                    transfers.c.session_id == session_id,
                    transfers.c.state.in_([UploadState.RECEIVING.value,
                                           UploadState.COMPLETE.value])))
            self.limits.check_quota(size, int(used or 0))
            reserved = sum(live.upload.size - live.writer.offset for live in self._live.values())
            await self._in_thread(self.limits.check_disk, self._store.root, size + reserved)
            blob_id = self._store.new_id()
            key, wrapped = self._keys.new_key(blob_id)
            writer = await self._in_thread(self._store.create, blob_id, key, size)
            now = self._clock.now()
            upload = Upload(
                id=secrets.token_urlsafe(16), session_id=session_id, sender=sender,
                name=clean_name, size=size, offset=0, state=UploadState.RECEIVING,
                content_type=OCTET_STREAM, created_at=now, updated_at=now,
                expires_at=now + self._settings.transfer_upload_expiry_seconds,
                completed_at=None, sha256=None, declared_sha256=declared, metadata=metadata,
                reason=None, blob_id=blob_id, wrapped_key=wrapped)
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(transfers.insert().values(**_row_of(upload)))
            except BaseException:
                await self._in_thread(writer.close)
                await self._in_thread(self._store.remove, blob_id)
                raise
            live = _Live(upload, writer, touched=self._monotonic())
            self._live[upload.id] = live
        if size == 0:
            async with live.lock:
                await self._complete(live)
            return live.upload
        log.info("upload %s: %s (%d bytes) from %s in session %s", upload.id, clean_name, size,
                 sender.sender, session_id)
        return upload

    # -- the tus verbs -------------------------------------------------------------------

    async def status(self, session_id: str, upload_id: str, actor: Actor) -> Upload:
        """Where an upload stands, for its sender (tus HEAD). A request still writing it
        is stopped first, so the offset returned is the one to resume from."""
        upload = await self._senders(session_id, upload_id, actor)
        if upload.state is UploadState.COMPLETE:
            return upload
        if upload.state is not UploadState.RECEIVING:
            raise Gone(_gone_message(upload))
        try:
            live = await self._acquire(upload)
        except Gone:
            latest = await self.get(session_id, upload_id)
            if latest.state is UploadState.COMPLETE:  # completed while we waited
                return latest
            raise
        try:
            if live.writer.offset == live.upload.size:  # all stored before a crash
                await self._complete(live)
            return live.upload
        finally:
            live.lock.release()

    async def append(self, session_id: str, upload_id: str, actor: Actor, offset: int,
                     source: ByteSource, *, checksum: RequestChecksum | None = None,
                     length: int | None = None) -> Upload:
        """Store the bytes of `source` at `offset` (tus PATCH). Returns the upload as it
        stands afterwards; its offset says how much is stored."""
        upload = await self._senders(session_id, upload_id, actor)
        if upload.state is UploadState.COMPLETE and offset == upload.size and not length:
            return upload
        if upload.state is not UploadState.RECEIVING:
            if upload.state is UploadState.COMPLETE:
                raise Conflict("This upload is already complete.", code="offset_mismatch")
            raise Gone(_gone_message(upload))
        await self._check_session_open(session_id, actor)
        live = await self._acquire(upload)
        try:
            if offset != live.writer.offset:
                raise Conflict(f"The upload has {live.writer.offset} bytes, not {offset}; "
                               "ask for the offset and resume from there.",
                               code="offset_mismatch")
            if length is not None and offset + length > live.upload.size:
                raise TooLarge("The request carries more bytes than the upload has left.",
                               code="beyond_upload_length")
            await self._receive(live, source, checksum)
            return live.upload
        finally:
            live.source = None
            live.lock.release()

    async def terminate(self, session_id: str, upload_id: str, actor: Actor) -> None:
        """The sender cancels an upload, or takes back a file already sent (tus DELETE)."""
        upload = await self._senders(session_id, upload_id, actor)
        if upload.state is UploadState.COMPLETE:
            await self._set_state(upload, UploadState.REMOVED, reason="sender", by=actor)
            return
        if upload.state is not UploadState.RECEIVING:
            raise Gone(_gone_message(upload))
        live = await self._acquire(upload)
        try:
            await self._set_state(live.upload, UploadState.CANCELLED, reason="cancelled",
                                  by=actor)
        finally:
            live.lock.release()

    # -- housekeeping --------------------------------------------------------------------

    async def sweep(self) -> None:
        """Expire unfinished uploads, cancel those of ended sessions, remove the files of
        sessions that ended longer ago than the retention, and let idle uploads go."""
        now = self._clock.now()
        async with self._engine.connect() as conn:
            unfinished = (await conn.execute(
                sa.select(transfers, sessions.c.state.label("session_state"))
                .join(sessions, sessions.c.id == transfers.c.session_id)
                .where(transfers.c.state == UploadState.RECEIVING.value,
                       sa.or_(transfers.c.expires_at <= now,
                              sessions.c.state == SessionState.ENDED.value)))).all()
            retired = (await conn.execute(
                sa.select(transfers).join(sessions, sessions.c.id == transfers.c.session_id)
                .where(transfers.c.state == UploadState.COMPLETE.value,
                       sessions.c.state == SessionState.ENDED.value,
                       sessions.c.ended_at <= now - self._settings.transfer_retention_seconds)
            )).all()
        for row in unfinished:
            upload = _upload_from_row(row)
            live = self._live.get(upload.id)
            if live is not None and live.lock.locked():
                if row.session_state != SessionState.ENDED.value:
                    continue  # data is arriving: not expired
                if live.source is not None:
                    live.source.abort()
            ended = row.session_state == SessionState.ENDED.value
            await self._end_unfinished(upload, UploadState.CANCELLED if ended
                                       else UploadState.EXPIRED,
                                       "session_ended" if ended else "expired")
        for row in retired:
            await self._settle(_upload_from_row(row), UploadState.REMOVED, "retention")
        # Their events were written into ended sessions: let the journal drop them again.
        for session_id in {row.session_id for row in retired} | {
                row.session_id for row in unfinished
                if row.session_state == SessionState.ENDED.value}:
            self._journal.forget(session_id)
        idle_since = self._monotonic() - IDLE_SECONDS
        for live in list(self._live.values()):
            if not live.lock.locked() and live.touched < idle_since:
                self._live.pop(live.upload.id, None)
                await self._in_thread(live.writer.close)

    async def _end_unfinished(self, upload: Upload, state: UploadState, reason: str) -> None:
        live = self._live.get(upload.id)
        if live is None:
            await self._settle(upload, state, reason)
            return
        try:
            async with asyncio.timeout(TAKEOVER_SECONDS):
                await live.lock.acquire()
        except TimeoutError:
            return  # next sweep
        try:
            await self._settle(live.upload, state, reason)
        finally:
            live.lock.release()

    async def _settle(self, upload: Upload, state: UploadState, reason: str) -> None:
        try:
            await self._set_state(upload, state, reason=reason)
        except Conflict:
            pass  # changed meanwhile; the sweep looks again next time
        except Exception:
            log.exception("could not move upload %s to %s", upload.id, state)

    # -- internals -----------------------------------------------------------------------

    async def _check_session_open(self, session_id: str, actor: Actor) -> None:
        state = await self._journal.state(session_id)
        if state is SessionState.ENDED:
            raise Conflict("This session has ended.", code="session_ended")
        if state is SessionState.WAITING and actor.role is not Role.TECHNICIAN:
            raise Conflict("The session has not started.", code="session_waiting")

    async def _senders(self, session_id: str, upload_id: str, actor: Actor) -> Upload:
        upload = await self.get(session_id, upload_id)
        if upload.sender.sender != actor.sender:
            raise Forbidden("Only the sender of a file can upload, resume or cancel it.")
        return upload

    async def _acquire(self, upload: Upload) -> _Live:
        """The upload's live state, locked for this request (taking over from a request
        that still holds it)."""
        live = await self._live_for(upload)
        if live.lock.locked() and live.source is not None:
            live.source.abort()
        try:
            async with asyncio.timeout(TAKEOVER_SECONDS):
                await live.lock.acquire()
        except TimeoutError:
            raise Conflict("Another request is still writing this upload; try again.",
                           code="upload_busy") from None
        if self._live.get(upload.id) is not live:
            live.lock.release()
            raise Gone(_gone_message(await self.get(upload.session_id, upload.id)))
        if upload.updated_at > live.upload.updated_at:
            # Another node sharing the transfer directory stored more of it since this
            # node did (the client resumed there): continue from the disk, not from memory.
            try:
                await self._in_thread(live.writer.close)
                key = self._keys.unwrap(upload.blob_id, upload.wrapped_key)
                live.writer = await self._in_thread(self._store.resume, upload.blob_id, key,
                                                    upload.size)
            except BaseException:
                self._live.pop(upload.id, None)
                live.lock.release()
                raise
            live.upload = dataclasses.replace(upload, offset=live.writer.offset)
        live.touched = self._monotonic()
        return live

    async def _live_for(self, upload: Upload) -> _Live:
        live = self._live.get(upload.id)
        if live is not None:
            return live
        async with self._load_lock:
            live = self._live.get(upload.id)
            if live is not None:
                return live
            upload = await self.get(upload.session_id, upload.id)
            if upload.state is not UploadState.RECEIVING:  # settled by another request
                raise Gone(_gone_message(upload))
            key = self._keys.unwrap(upload.blob_id, upload.wrapped_key)
            # After a restart: decrypt what is stored to rebuild the running SHA-256.
            writer = await self._in_thread(self._store.resume, upload.blob_id, key, upload.size)
            if writer.offset != upload.offset:
                log.info("upload %s resumes at %d (the database had %d)", upload.id,
                         writer.offset, upload.offset)
            upload = dataclasses.replace(upload, offset=writer.offset)
            live = _Live(upload, writer, touched=self._monotonic())
            self._live[upload.id] = live
            return live

    async def _receive(self, live: _Live, source: ByteSource,
                       checksum: RequestChecksum | None) -> None:
        """Read `source` to its end into the upload, then commit, check and complete."""
        writer = live.writer
        start = writer.offset
        mark = await self._in_thread(writer.mark)
        request_hash = hashlib.new(checksum.algorithm) if checksum is not None else None
        hashes = (request_hash,) if request_hash is not None else ()
        throttle = Throttle(self._settings.transfer_rate_bytes_per_second,
                            monotonic=self._monotonic)
        loop = asyncio.get_running_loop()
        ahead: asyncio.Future[None] | None = None
        pending: list[bytes | bytearray] = []
        pending_bytes = 0
        received = 0
        committed_at = start
        live.source = source
        live.progress_at, live.progress_offset = self._monotonic(), start

        async def push(batch: list[bytes | bytearray]) -> None:
            nonlocal ahead
            if ahead is not None:
                await asyncio.shield(ahead)
                ahead = None
            ahead = loop.run_in_executor(self._pool, self._feed, live, batch, hashes)

        async def settle_ahead() -> None:
            nonlocal ahead
            if ahead is not None:
                future, ahead = ahead, None
                await asyncio.shield(future)

        interrupted = False
        try:
            while True:
                try:
                    piece = await source.read(BATCH_BYTES)
                except ConnectionError:
                    interrupted = True
                    break
                if not piece:
                    break
                received += len(piece)
                if start + received > live.upload.size:
                    raise TooLarge("The request carries more bytes than the upload has left.",
                                   code="beyond_upload_length")
                pending.append(piece)
                pending_bytes += len(piece)
                if pending_bytes >= BATCH_BYTES:
                    await push(pending)
                    pending, pending_bytes = [], 0
                    if request_hash is None and start + received - committed_at >= COMMIT_EVERY:
                        await settle_ahead()
                        await self._commit(live, durable=False)
                        committed_at = writer.offset
                    self._progress(live, start + received)
                await throttle.take(len(piece), self._total)
            if pending:
                await push(pending)
            await settle_ahead()
        except (TypeNotAllowed, InsufficientStorage) as error:
            await self._drain(ahead)
            await self._reject(live, error, received)
            raise
        except OSError as error:
            await self._drain(ahead)
            if _is_disk_full(error):
                refused = InsufficientStorage("The broker's disk is full.")
                await self._reject(live, refused, received)
                raise refused from error
            await self._in_thread(writer.rollback, mark)
            raise
        except asyncio.CancelledError:
            # The connection went away (on servers that cancel handlers then), or the
            # broker shuts down: keep what arrived, as for any cut connection.
            await self._drain(ahead)
            if checksum is None:
                await self._commit(live, durable=True)
            else:
                await self._in_thread(writer.rollback, mark)
            raise
        except BaseException:
            # Over the upload's length, or a bug: keep what was committed before this
            # request and nothing of it.
            await self._drain(ahead)
            with contextlib.suppress(Exception):
                await self._in_thread(writer.rollback, mark)
            raise
        if checksum is not None and request_hash is not None:
            if interrupted:  # cannot be checked: the client sends this request again
                await self._in_thread(writer.rollback, mark)
                self._progress(live, writer.offset, force=True)
                return
            if request_hash.digest() != checksum.digest:
                await self._in_thread(writer.rollback, mark)
                self._progress(live, writer.offset, force=True)
                raise ChecksumMismatch(
                    f"The data does not match its {checksum.algorithm} checksum; it was not "
                    "stored. Send it again.")
        await self._commit(live, durable=True)
        self._progress(live, writer.offset, force=True)
        if writer.offset == live.upload.size:
            await self._complete(live)

    async def _drain(self, ahead: asyncio.Future[None] | None) -> None:
        """Wait for a batch still in a worker thread (its error no longer matters)."""
        if ahead is not None:
            with contextlib.suppress(Exception):
                await ahead

    def _feed(self, live: _Live, pieces: list[bytes | bytearray], hashes: tuple[Any, ...]) -> None:
        """In a worker thread: check the limits that depend on the data, then store it."""
        writer = live.writer
        if live.upload.content_type == OCTET_STREAM and len(writer.head) < SNIFF_BYTES:
            head = writer.head
            for piece in pieces:
                head += piece[:SNIFF_BYTES - len(head)]
            if len(head) >= min(SNIFF_BYTES, writer.size):
                self._judge_type(live, head)
        self.limits.check_disk(self._store.root, sum(len(piece) for piece in pieces))
        writer.feed(pieces, hashes)

    def _judge_type(self, live: _Live, head: bytes) -> None:
        extension = extension_of(live.upload.name)
        family = sniff(head)
        self.limits.check_content(extension, family)
        live.upload = dataclasses.replace(live.upload,
                                          content_type=content_type(family, extension))

    async def _commit(self, live: _Live, *, durable: bool) -> None:
        await self._in_thread(functools.partial(live.writer.commit, durable=durable))
        now = self._clock.now()
        expires_at = now + self._settings.transfer_upload_expiry_seconds
        async with self._engine.begin() as conn:
            await conn.execute(transfers.update().where(
                transfers.c.id == live.upload.id,
                transfers.c.state == UploadState.RECEIVING.value).values(
                received=live.writer.offset, updated_at=now, expires_at=expires_at,
                content_type=live.upload.content_type))
        live.upload = dataclasses.replace(live.upload, offset=live.writer.offset,
                                          updated_at=now, expires_at=expires_at)

    async def _complete(self, live: _Live) -> None:
        """Every byte is stored: check the type (small files), the hash, and offer it."""
        upload = live.upload
        sha256 = await self._in_thread(live.writer.finish)
        if upload.content_type == OCTET_STREAM:
            try:
                self._judge_type(live, live.writer.head)
            except TypeNotAllowed as error:
                await self._reject(live, error, upload.size)
                raise
            upload = live.upload
        if upload.declared_sha256 is not None and upload.declared_sha256 != sha256:
            log.warning("upload %s was damaged in transfer: sha256 %s, declared %s", upload.id,
                        sha256, upload.declared_sha256)
            await self._set_state(upload, UploadState.DAMAGED, reason="damaged_in_transfer",
                                  sha256=sha256, received=upload.size)
            raise ChecksumMismatch(
                "The file was damaged in transfer: its SHA-256 does not match the checksum "
                "that was sent with it, so it was not offered. Send it again.",
                code="damaged_in_transfer")
        if await self._journal.state(upload.session_id) is SessionState.ENDED:
            await self._set_state(upload, UploadState.CANCELLED, reason="session_ended")
            raise Conflict("This session has ended.", code="session_ended")
        await self._set_state(upload, UploadState.COMPLETE, sha256=sha256, received=upload.size,
                              content_type=upload.content_type, completed_at=self._clock.now(),
                              expires_at=None)

    async def _reject(self, live: _Live, error: BrokerError, received: int) -> None:
        log.info("upload %s refused: %s", live.upload.id, error.message)
        upload = dataclasses.replace(live.upload, offset=max(live.upload.offset,
                                                             min(received, live.upload.size)))
        with contextlib.suppress(Conflict):
            await self._set_state(upload, UploadState.REJECTED, reason=error.code)

    async def _set_state(self, upload: Upload, new: UploadState, *, reason: str | None = None,
                         by: Actor | None = None, **columns: Any) -> Upload:
        """The one place an upload changes state: the row (only if nobody changed it
        meanwhile), the data on disk, and the event both participants see."""
        check_transition(upload.state, new)
        now = self._clock.now()
        values: dict[str, Any] = {"state": new.value, "updated_at": now, **columns}
        if reason is not None:
            values["reason"] = reason
        if not new.has_data:
            values["wrapped_key"] = ""  # forget the key too: a copy of the data stays unreadable
        async with self._engine.begin() as conn:
            result = await conn.execute(transfers.update().where(
                transfers.c.id == upload.id,
                transfers.c.state == upload.state.value).values(**values))
        if result.rowcount != 1:
            raise Conflict("The upload changed meanwhile.", code="upload_changed")
        updated = _apply(upload, values)
        live = self._live.pop(upload.id, None)
        if live is not None:
            live.upload = updated
            with contextlib.suppress(OSError):
                await self._in_thread(functools.partial(
                    live.writer.close, done=new is UploadState.COMPLETE))
        if not new.has_data:
            await self._in_thread(self._store.remove, upload.blob_id)
        await self._announce(upload, updated, by)
        return updated

    async def _announce(self, before: Upload, upload: Upload, by: Actor | None) -> None:
        kind: str | None = None
        data: dict[str, Any] = {"upload_id": upload.id, "name": upload.name,
                                "size": upload.size}
        author: Actor | None = upload.sender
        if upload.state is UploadState.COMPLETE:
            kind, data = "file.offered", upload.offer()
        elif upload.state is UploadState.DAMAGED:
            kind = "file.damaged"
            data.update(sha256=upload.sha256, expected=upload.declared_sha256)
        elif upload.state is UploadState.REMOVED:
            kind = "file.removed"
            data["reason"] = upload.reason
            author = by
        elif before.offset > 0 or upload.offset > 0:
            # Cancelled, expired or refused after the other side saw it coming.
            kind = "file.cancelled"
            data.update(received=upload.offset, reason=upload.reason)
            author = by
        if kind is None:
            return
        try:
            await self._journal.append(upload.session_id, kind, data, author=author,
                                       allow_ended=True)
        except BrokerError as error:
            log.warning("could not record %s for upload %s: %s", kind, upload.id, error)

    def _progress(self, live: _Live, offset: int, *, force: bool = False) -> None:
        now = self._monotonic()
        elapsed = now - live.progress_at
        if not force and elapsed < PROGRESS_INTERVAL:
            return
        if elapsed > 0:
            rate = (offset - live.progress_offset) / elapsed
            live.speed = rate if live.speed == 0 else 0.5 * live.speed + 0.5 * rate
        live.progress_at, live.progress_offset = now, offset
        upload = live.upload
        # Not stored: progress only matters while it happens (to both sides' pages).
        self._bus.publish(session_topic(upload.session_id), Signal(upload.session_id, FileProgress(
            upload.id, upload.name, upload.size, offset, max(0, int(live.speed)),
            upload.sender.public())))

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking file work in a worker thread. When the caller is cancelled the
        thread still finishes what it started before the cancellation goes on."""
        future = asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
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


def _is_disk_full(error: OSError) -> bool:
    return error.errno in (errno.ENOSPC, errno.EDQUOT)


def _gone_message(upload: Upload) -> str:
    reasons = {
        UploadState.DAMAGED: "it was damaged in transfer",
        UploadState.REJECTED: "it was refused",
        UploadState.CANCELLED: "it was cancelled",
        UploadState.EXPIRED: "it was left unfinished too long",
        UploadState.REMOVED: "it was removed",
    }
    return f"This file is no longer available: {reasons.get(upload.state, upload.state)}."


def _row_of(upload: Upload) -> dict[str, Any]:
    return {
        "id": upload.id, "session_id": upload.session_id,
        "sender_role": upload.sender.role.value, "sender_id": upload.sender.id,
        "sender_name": upload.sender.name, "name": upload.name, "size": upload.size,
        "received": upload.offset, "state": upload.state.value,
        "content_type": upload.content_type, "created_at": upload.created_at,
        "updated_at": upload.updated_at, "expires_at": upload.expires_at,
        "completed_at": upload.completed_at, "sha256": upload.sha256,
        "declared_sha256": upload.declared_sha256, "upload_metadata": upload.metadata,
        "reason": upload.reason, "blob_id": upload.blob_id, "wrapped_key": upload.wrapped_key,
    }


def _upload_from_row(row: Any) -> Upload:
    return Upload(
        id=row.id, session_id=row.session_id,
        sender=Actor(Role(row.sender_role), row.sender_id, row.sender_name), name=row.name,
        size=row.size, offset=row.received, state=UploadState(row.state),
        content_type=row.content_type, created_at=row.created_at, updated_at=row.updated_at,
        expires_at=row.expires_at, completed_at=row.completed_at, sha256=row.sha256,
        declared_sha256=row.declared_sha256, metadata=row.upload_metadata, reason=row.reason,
        blob_id=row.blob_id, wrapped_key=row.wrapped_key)


def _apply(upload: Upload, values: dict[str, Any]) -> Upload:
    fields = {"state": UploadState(values["state"]), "updated_at": values["updated_at"]}
    for column, field in (("reason", "reason"), ("sha256", "sha256"), ("received", "offset"),
                          ("content_type", "content_type"), ("completed_at", "completed_at"),
                          ("expires_at", "expires_at")):
        if column in values:
            fields[field] = values[column]
    return dataclasses.replace(upload, **fields)
