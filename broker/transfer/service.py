"""Files sent in a session: created, appended to (resumably), checked, offered, cancelled,
expired and removed. Knows nothing of HTTP; `web/files.py` speaks tus on its behalf.

This module holds the verbs; the work is done by its parts: `receiving.py` (an upload's
bytes hashed, encrypted and written), `sending.py` (downloads), `sweep.py` (expiry and
retention), and `uploads.py` (what they share, and the one place an upload changes
state).

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
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import AsyncGenerator, Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..audit import Action, AuditActor, AuditService
from ..bus import EventBus
from ..clock import Clock
from ..errors import Conflict, Forbidden, Gone, InvalidInput, NotFound, RateLimited, TooLarge
from ..ratelimit import KeyedBuckets
from ..schema import transfers
from ..sessions import Actor, Journal, Role, SessionState
from ..settings import Settings
from .limits import OCTET_STREAM, Limits
from .model import Upload, UploadState
from .names import display_name, extension_of
from .receiving import ByteSource, Receiver, RequestChecksum, parse_declared_sha256
from .sending import PlaintextSink, Sender
from .sweep import sweep
from .uploads import TAKEOVER_SECONDS, Live, Uploads, gone_message, row_of

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_METADATA_CHARS = 4096
# Files in the transfer directory that no upload owns are removed at start once this old.
ORPHAN_AGE_SECONDS = 3600.0


class TransferService:
    """The file-transfer domain. One per broker; owns its worker threads."""

    def __init__(self, settings: Settings, engine: AsyncEngine, journal: Journal,
                 bus: EventBus, clock: Clock, master_key: bytes, *, audit: AuditService,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._audit = audit
        self._uploads = Uploads(settings, engine, journal, bus, clock, master_key,
                                monotonic=monotonic)
        self._create_limiter = KeyedBuckets(clock, rate=settings.transfer_upload_rate_per_second,
                                            burst=settings.transfer_upload_burst)
        self.limits: Limits = self._uploads.limits
        self._receiver = Receiver(self._uploads)
        self._sender = Sender(self._uploads)
        self._create_lock = asyncio.Lock()
        self._load_lock = asyncio.Lock()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Prepare the directory and remove files that no live upload owns (left behind
        by a crash between the database and the disk)."""
        uploads = self._uploads
        await uploads.in_thread(uploads.store.prepare)
        async with uploads.engine.connect() as conn:
            keep = set((await conn.scalars(sa.select(transfers.c.blob_id).where(
                transfers.c.state.in_([s.value for s in UploadState if s.has_data])))).all())
        stale = time.time() - ORPHAN_AGE_SECONDS  # file times are wall-clock times
        for blob_id in await uploads.in_thread(uploads.store.stored_ids, stale) - keep:
            log.info("removing transfer data %s that no upload owns", blob_id)
            await uploads.in_thread(uploads.store.remove, blob_id)

    def interrupt_all(self) -> None:
        """Stop every running upload's reading (each keeps what it received) and every
        download sent from a thread (its client resumes with a Range request)."""
        for live in list(self._uploads.live.values()):
            if live.source is not None:
                live.source.abort()
        self._sender.interrupt()

    async def close(self) -> None:
        """Stop running transfers (each upload keeps what it received) and the threads."""
        self.interrupt_all()
        self._sender.close()
        self._receiver.close()
        for live in list(self._uploads.live.values()):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TAKEOVER_SECONDS):
                    await live.lock.acquire()
            self._uploads.live.pop(live.upload.id, None)
            with contextlib.suppress(OSError):
                await self._uploads.in_thread(live.writer.close)
        self._uploads.pool.shutdown(wait=True)

    async def sweep(self) -> None:
        """Expire unfinished uploads, cancel those of ended sessions, remove the files of
        sessions that ended longer ago than the retention, and let idle uploads go."""
        await sweep(self._uploads)

    # -- reading -------------------------------------------------------------------------

    async def get(self, session_id: str, upload_id: str) -> Upload:
        return await self._uploads.get(session_id, upload_id)

    async def for_session(self, session_id: str) -> list[Upload]:
        return await self._uploads.for_session(session_id)

    async def downloadable(self, session_id: str, upload_id: str) -> Upload:
        """The upload, if it can be downloaded: complete and still stored."""
        upload = await self.get(session_id, upload_id)
        if upload.state is UploadState.COMPLETE:
            return upload
        if upload.state is UploadState.RECEIVING:
            raise NotFound("This file has not arrived completely yet.", code="not_complete")
        raise Gone(gone_message(upload))

    async def downloading(self, upload: Upload, actor: Actor, start: int) -> None:
        """A download of `upload` by `actor` begins at byte `start`: recorded in the audit
        log when it starts at the beginning (a resumed one is the same download)."""
        if start == 0:
            await self._audit.record(
                Action.FILE_DOWNLOADED, session_id=upload.session_id,
                actor=AuditActor.of(actor.role.value, actor.id, actor.name),
                details={"upload_id": upload.id, "name": upload.name, "size": upload.size})

    def read(self, upload: Upload, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """Bytes [start, end) of a complete upload through the loop (`Sender.read`)."""
        return self._sender.read(upload, start, end)

    async def send(self, upload: Upload, start: int, end: int, sink: PlaintextSink) -> bool:
        """Bytes [start, end) of a complete upload sent to `sink` by a sending thread;
        False when every one is busy (`Sender.send`)."""
        return await self._sender.send(upload, start, end, sink)

    @property
    def sending(self) -> int:
        """Downloads being sent from sending threads now."""
        return self._sender.sending

    # -- receiving -----------------------------------------------------------------------

    def receiver(self) -> contextlib.AbstractContextManager[
            Callable[[Callable[[], T]], asyncio.Future[T]] | None]:
        """A way to start a blocking read of a body in a receiving thread, or None when
        every one is taken (`Receiver.receiver`)."""
        return self._receiver.receiver()

    @property
    def receiving(self) -> int:
        """Upload bodies being read in receiving threads now."""
        return self._receiver.receiving

    # -- creating ------------------------------------------------------------------------

    async def create(self, session_id: str, sender: Actor, size: int, *, name: str,
                     checksum: str | None = None, metadata: str = "") -> Upload:
        """A new upload of `size` bytes, checked against every limit that can be checked
        before the first byte."""
        uploads = self._uploads
        await self._check_session_open(session_id, sender)
        clean_name = display_name(name)
        self.limits.check_size(size)
        self.limits.check_extension(extension_of(clean_name))
        declared = parse_declared_sha256(checksum)
        if len(metadata) > MAX_METADATA_CHARS:
            raise InvalidInput(f"Upload-Metadata is limited to {MAX_METADATA_CHARS} characters.")
        # Per participant, like chat lines: each upload becomes a file event in the chat.
        try:
            self._create_limiter.take(f"{session_id}:{sender.sender}")
        except RateLimited as limited:
            raise RateLimited(limited.retry_after,
                              "Too many files at once; wait a moment.") from None
        async with self._create_lock:  # quota and disk space are checked and taken at once
            async with uploads.engine.connect() as conn:
                used = await conn.scalar(sa.select(sa.func.coalesce(
                    sa.func.sum(transfers.c.size), 0)).where(
                    transfers.c.session_id == session_id,
                    transfers.c.state.in_([UploadState.RECEIVING.value,
                                           UploadState.COMPLETE.value])))
            self.limits.check_quota(size, int(used or 0))
            reserved = sum(live.upload.size - live.writer.offset
                           for live in uploads.live.values())
            await uploads.in_thread(self.limits.check_disk, uploads.store.root, size + reserved)
            blob_id = uploads.store.new_id()
            key, wrapped = uploads.keys.new_key(blob_id)
            writer = await uploads.in_thread(uploads.store.create, blob_id, key, size)
            now = uploads.clock.now()
            upload = Upload(
                id=secrets.token_urlsafe(16), session_id=session_id, sender=sender,
                name=clean_name, size=size, offset=0, state=UploadState.RECEIVING,
                content_type=OCTET_STREAM, created_at=now, updated_at=now,
                expires_at=now + uploads.settings.transfer_upload_expiry_seconds,
                completed_at=None, sha256=None, declared_sha256=declared, metadata=metadata,
                reason=None, blob_id=blob_id, wrapped_key=wrapped)
            try:
                async with uploads.engine.begin() as conn:
                    await conn.execute(transfers.insert().values(**row_of(upload)))
            except BaseException:
                await uploads.in_thread(writer.close)
                await uploads.in_thread(uploads.store.remove, blob_id)
                raise
            live = Live(upload, writer, touched=uploads.monotonic())
            uploads.live[upload.id] = live
        if size == 0:
            async with live.lock:
                await self._receiver.complete(live)
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
            raise Gone(gone_message(upload))
        try:
            live = await self._acquire(upload)
        except Gone:
            latest = await self.get(session_id, upload_id)
            if latest.state is UploadState.COMPLETE:  # completed while we waited
                return latest
            raise
        try:
            if live.writer.offset == live.upload.size:  # all stored before a crash
                await self._receiver.complete(live)
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
            raise Gone(gone_message(upload))
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
            await self._receiver.receive(live, source, checksum)
            return live.upload
        finally:
            live.source = None
            live.lock.release()

    async def terminate(self, session_id: str, upload_id: str, actor: Actor) -> None:
        """The sender cancels an upload, or takes back a file already sent (tus DELETE)."""
        upload = await self._senders(session_id, upload_id, actor)
        if upload.state is UploadState.COMPLETE:
            await self._uploads.set_state(upload, UploadState.REMOVED, reason="sender", by=actor)
            return
        if upload.state is not UploadState.RECEIVING:
            raise Gone(gone_message(upload))
        live = await self._acquire(upload)
        try:
            await self._uploads.set_state(live.upload, UploadState.CANCELLED,
                                          reason="cancelled", by=actor)
        finally:
            live.lock.release()

    # -- internals -----------------------------------------------------------------------

    async def _check_session_open(self, session_id: str, actor: Actor) -> None:
        state = await self._uploads.journal.state(session_id)
        if state is SessionState.ENDED:
            raise Conflict("This session has ended.", code="session_ended")
        if state is SessionState.WAITING and actor.role is not Role.TECHNICIAN:
            raise Conflict("The session has not started.", code="session_waiting")

    async def _senders(self, session_id: str, upload_id: str, actor: Actor) -> Upload:
        upload = await self.get(session_id, upload_id)
        if upload.sender.sender != actor.sender:
            raise Forbidden("Only the sender of a file can upload, resume or cancel it.")
        return upload

    async def _acquire(self, upload: Upload) -> Live:
        """The upload's live state, locked for this request (taking over from a request
        that still holds it)."""
        uploads = self._uploads
        live = await self._live_for(upload)
        if live.lock.locked() and live.source is not None:
            live.source.abort()
        try:
            async with asyncio.timeout(TAKEOVER_SECONDS):
                await live.lock.acquire()
        except TimeoutError:
            raise Conflict("Another request is still writing this upload; try again.",
                           code="upload_busy") from None
        if uploads.live.get(upload.id) is not live:
            live.lock.release()
            raise Gone(gone_message(await self.get(upload.session_id, upload.id)))
        if upload.updated_at > live.upload.updated_at:
            # Another node sharing the transfer directory stored more of it since this
            # node did (the client resumed there): continue from the disk, not from memory.
            try:
                await uploads.in_thread(live.writer.close)
                key = uploads.keys.unwrap(upload.blob_id, upload.wrapped_key)
                live.writer = await uploads.in_thread(uploads.store.resume, upload.blob_id,
                                                      key, upload.size)
            except BaseException:
                uploads.live.pop(upload.id, None)
                live.lock.release()
                raise
            live.upload = dataclasses.replace(upload, offset=live.writer.offset)
        live.touched = uploads.monotonic()
        return live

    async def _live_for(self, upload: Upload) -> Live:
        uploads = self._uploads
        live = uploads.live.get(upload.id)
        if live is not None:
            return live
        async with self._load_lock:
            live = uploads.live.get(upload.id)
            if live is not None:
                return live
            upload = await self.get(upload.session_id, upload.id)
            if upload.state is not UploadState.RECEIVING:  # settled by another request
                raise Gone(gone_message(upload))
            key = uploads.keys.unwrap(upload.blob_id, upload.wrapped_key)
            # After a restart: decrypt what is stored to rebuild the running SHA-256.
            writer = await uploads.in_thread(uploads.store.resume, upload.blob_id, key, upload.size)
            if writer.offset != upload.offset:
                log.info("upload %s resumes at %d (the database had %d)", upload.id,
                         writer.offset, upload.offset)
            upload = dataclasses.replace(upload, offset=writer.offset)
            live = Live(upload, writer, touched=uploads.monotonic())
            uploads.live[upload.id] = live
            return live
