"""The receive pipeline: an upload's bytes read from its request, checked, hashed,
encrypted and written, committed now and then, and completed (or refused) at the end.

The event loop (or a receiving thread, see `Receiver.receiver`) only reads the request
and hands each batch to a storing thread that checks, hashes, encrypts and writes it
while the next batch arrives. A request that is cut off keeps what it delivered; one
that carried a checksum keeps nothing unless the checksum holds.
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
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

from ..errors import (
    BrokerError,
    ChecksumMismatch,
    Conflict,
    InsufficientStorage,
    InvalidInput,
    TooLarge,
    TypeNotAllowed,
)
from ..protocol.transfer import FileProgress
from ..schema import transfers
from ..sessions import SessionState, Signal, session_topic
from .limits import OCTET_STREAM, SNIFF_BYTES, content_type, sniff
from .model import UploadState
from .names import extension_of
from .threads import BATCH_BYTES, worker_pool
from .uploads import Live, Uploads

log = logging.getLogger(__name__)
T = TypeVar("T")

# A long request commits (without fsync) this often, so a crash loses little of it.
COMMIT_EVERY = 64 * 1024 * 1024
PROGRESS_INTERVAL = 0.25
# Upload bodies read from threads of their own at once (`receiver`): a read waits for the
# client (not computing), so these are apart from the threads that store, and an upload
# beyond these is read by the loop.
RECEIVE_THREADS = 4
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


class Receiver:
    """Stores what requests carry into their uploads. Owns the receiving threads."""

    def __init__(self, uploads: Uploads) -> None:
        self._uploads = uploads
        self._pool = worker_pool(RECEIVE_THREADS, "transfer-receive")
        self._receiving = 0

    def close(self) -> None:
        self._pool.shutdown(wait=True)

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
            yield functools.partial(asyncio.get_running_loop().run_in_executor, self._pool)
        finally:
            self._receiving -= 1

    async def receive(self, live: Live, source: ByteSource,
                      checksum: RequestChecksum | None) -> None:
        """Read `source` to its end into the upload, then commit, check and complete."""
        uploads = self._uploads
        writer = live.writer
        start = writer.offset
        mark = await uploads.in_thread(writer.mark)
        request_hash = hashlib.new(checksum.algorithm) if checksum is not None else None
        hashes = (request_hash,) if request_hash is not None else ()
        throttle = uploads.throttle()
        loop = asyncio.get_running_loop()
        ahead: asyncio.Future[None] | None = None
        pending: list[bytes | bytearray] = []
        pending_bytes = 0
        received = 0
        committed_at = start
        live.source = source
        live.progress_at, live.progress_offset = uploads.monotonic(), start

        async def push(batch: list[bytes | bytearray]) -> None:
            nonlocal ahead
            if ahead is not None:
                await asyncio.shield(ahead)
                ahead = None
            ahead = loop.run_in_executor(uploads.pool, self._feed, live, batch, hashes)

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
                await throttle.take(len(piece), uploads.total)
            if pending:
                await push(pending)
            await settle_ahead()
        except (TypeNotAllowed, InsufficientStorage) as error:
            await _drain(ahead)
            await self._reject(live, error, received)
            raise
        except OSError as error:
            await _drain(ahead)
            if _is_disk_full(error):
                refused = InsufficientStorage("The broker's disk is full.")
                await self._reject(live, refused, received)
                raise refused from error
            await uploads.in_thread(writer.rollback, mark)
            raise
        except asyncio.CancelledError:
            # The connection went away (on servers that cancel handlers then), or the
            # broker shuts down: keep what arrived, as for any cut connection.
            await _drain(ahead)
            if checksum is None:
                await self._commit(live, durable=True)
            else:
                await uploads.in_thread(writer.rollback, mark)
            raise
        except BaseException:
            # Over the upload's length, or a bug: keep what was committed before this
            # request and nothing of it.
            await _drain(ahead)
            with contextlib.suppress(Exception):
                await uploads.in_thread(writer.rollback, mark)
            raise
        if checksum is not None and request_hash is not None:
            if interrupted:  # cannot be checked: the client sends this request again
                await uploads.in_thread(writer.rollback, mark)
                self._progress(live, writer.offset, force=True)
                return
            if request_hash.digest() != checksum.digest:
                await uploads.in_thread(writer.rollback, mark)
                self._progress(live, writer.offset, force=True)
                raise ChecksumMismatch(
                    f"The data does not match its {checksum.algorithm} checksum; it was not "
                    "stored. Send it again.")
        await self._commit(live, durable=True)
        self._progress(live, writer.offset, force=True)
        if writer.offset == live.upload.size:
            await self.complete(live)

    async def complete(self, live: Live) -> None:
        """Every byte is stored: check the type (small files), the hash, and offer it."""
        uploads = self._uploads
        upload = live.upload
        sha256 = await uploads.in_thread(live.writer.finish)
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
            await uploads.set_state(upload, UploadState.DAMAGED, reason="damaged_in_transfer",
                                    sha256=sha256, received=upload.size)
            raise ChecksumMismatch(
                "The file was damaged in transfer: its SHA-256 does not match the checksum "
                "that was sent with it, so it was not offered. Send it again.",
                code="damaged_in_transfer")
        if await uploads.journal.state(upload.session_id) is SessionState.ENDED:
            await uploads.set_state(upload, UploadState.CANCELLED, reason="session_ended")
            raise Conflict("This session has ended.", code="session_ended")
        await uploads.set_state(upload, UploadState.COMPLETE, sha256=sha256,
                                received=upload.size, content_type=upload.content_type,
                                completed_at=uploads.clock.now(), expires_at=None)

    def _feed(self, live: Live, pieces: list[bytes | bytearray], hashes: tuple[Any, ...]) -> None:
        """In a storing thread: check the limits that depend on the data, then store it."""
        writer = live.writer
        if live.upload.content_type == OCTET_STREAM and len(writer.head) < SNIFF_BYTES:
            head = writer.head
            for piece in pieces:
                head += piece[:SNIFF_BYTES - len(head)]
            if len(head) >= min(SNIFF_BYTES, writer.size):
                self._judge_type(live, head)
        self._uploads.limits.check_disk(self._uploads.store.root,
                                        sum(len(piece) for piece in pieces))
        writer.feed(pieces, hashes)

    def _judge_type(self, live: Live, head: bytes) -> None:
        extension = extension_of(live.upload.name)
        family = sniff(head)
        self._uploads.limits.check_content(extension, family)
        live.upload = dataclasses.replace(live.upload,
                                          content_type=content_type(family, extension))

    async def _commit(self, live: Live, *, durable: bool) -> None:
        uploads = self._uploads
        await uploads.in_thread(functools.partial(live.writer.commit, durable=durable))
        now = uploads.clock.now()
        expires_at = now + uploads.settings.transfer_upload_expiry_seconds
        async with uploads.engine.begin() as conn:
            await conn.execute(transfers.update().where(
                transfers.c.id == live.upload.id,
                transfers.c.state == UploadState.RECEIVING.value).values(
                received=live.writer.offset, updated_at=now, expires_at=expires_at,
                content_type=live.upload.content_type))
        live.upload = dataclasses.replace(live.upload, offset=live.writer.offset,
                                          updated_at=now, expires_at=expires_at)

    async def _reject(self, live: Live, error: BrokerError, received: int) -> None:
        log.info("upload %s refused: %s", live.upload.id, error.message)
        upload = dataclasses.replace(live.upload, offset=max(live.upload.offset,
                                                             min(received, live.upload.size)))
        with contextlib.suppress(Conflict):
            await self._uploads.set_state(upload, UploadState.REJECTED, reason=error.code)

    def _progress(self, live: Live, offset: int, *, force: bool = False) -> None:
        now = self._uploads.monotonic()
        elapsed = now - live.progress_at
        if not force and elapsed < PROGRESS_INTERVAL:
            return
        if elapsed > 0:
            rate = (offset - live.progress_offset) / elapsed
            live.speed = rate if live.speed == 0 else 0.5 * live.speed + 0.5 * rate
        live.progress_at, live.progress_offset = now, offset
        upload = live.upload
        # Not stored: progress only matters while it happens (to both sides' pages).
        self._uploads.bus.publish(session_topic(upload.session_id), Signal(
            upload.session_id, FileProgress(upload.id, upload.name, upload.size, offset,
                                            max(0, int(live.speed)), upload.sender.public())))


async def _drain(ahead: asyncio.Future[None] | None) -> None:
    """Wait for a batch still in a storing thread (its error no longer matters)."""
    if ahead is not None:
        with contextlib.suppress(Exception):
            await ahead


def _is_disk_full(error: OSError) -> bool:
    return error.errno in (errno.ENOSPC, errno.EDQUOT)
