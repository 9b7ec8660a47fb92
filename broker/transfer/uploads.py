"""The uploads of one broker, shared by the parts of the transfer service (the tus verbs,
receiving, sending, the sweep): their rows, the ones this node is receiving, the threads
that store them, and the one place an upload changes state."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..bus import EventBus
from ..clock import Clock
from ..errors import BrokerError, Conflict, NotFound
from ..schema import transfers
from ..sessions import Actor, Journal, Role
from ..settings import Settings
from .blobwriter import BlobWriter
from .limits import Limits, Throttle, parse_allowed
from .model import Upload, UploadState, check_transition
from .records import KeyRing
from .store import BlobStore
from .threads import in_thread, worker_pool

if TYPE_CHECKING:
    from .receiving import ByteSource

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a request waits for the one still writing an upload to let go of it.
TAKEOVER_SECONDS = 10.0


@dataclasses.dataclass(slots=True)
class Live:
    """An upload this node is receiving: its writer, and who may write it now."""

    upload: Upload
    writer: BlobWriter
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    source: ByteSource | None = None
    touched: float = 0.0
    progress_at: float = 0.0
    progress_offset: int = 0
    speed: float = 0.0


class Uploads:
    """What the parts of one TransferService share. Owns the two threads that store."""

    def __init__(self, settings: Settings, engine: AsyncEngine, journal: Journal,
                 bus: EventBus, clock: Clock, master_key: bytes, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.engine = engine
        self.journal = journal
        self.bus = bus
        self.clock = clock
        self.monotonic = monotonic
        self.keys = KeyRing(master_key)
        self.store = BlobStore(settings.transfer_path)
        self.limits = Limits(
            max_bytes=settings.transfer_max_bytes,
            allowed=parse_allowed(settings.transfer_allowed_types),
            session_quota_bytes=settings.transfer_session_quota_bytes,
            min_free_bytes=settings.transfer_min_free_bytes)
        self.total = Throttle(settings.transfer_total_rate_bytes_per_second,
                              monotonic=monotonic)
        # Few threads: each transfer uses one at a time, and each thread's malloc arena
        # keeps a few batches' worth of memory.
        self.pool = worker_pool(2, "transfer")
        self.live: dict[str, Live] = {}

    def throttle(self) -> Throttle:
        """The rate cap of one transfer."""
        return Throttle(self.settings.transfer_rate_bytes_per_second, monotonic=self.monotonic)

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking file work in a storing thread (see threads.in_thread)."""
        return await in_thread(self.pool, fn, *args)

    async def get(self, session_id: str, upload_id: str) -> Upload:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(transfers).where(
                transfers.c.id == upload_id, transfers.c.session_id == session_id))).first()
        if row is None:
            raise NotFound("No such file in this session.")
        return upload_from_row(row)

    async def for_session(self, session_id: str) -> list[Upload]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(transfers).where(
                transfers.c.session_id == session_id).order_by(transfers.c.created_at))).all()
        return [upload_from_row(row) for row in rows]

    async def set_state(self, upload: Upload, new: UploadState, *, reason: str | None = None,
                        by: Actor | None = None, **columns: Any) -> Upload:
        """The one place an upload changes state: the row (only if nobody changed it
        meanwhile), the data on disk, and the event both participants see."""
        check_transition(upload.state, new)
        now = self.clock.now()
        values: dict[str, Any] = {"state": new.value, "updated_at": now, **columns}
        if reason is not None:
            values["reason"] = reason
        if not new.has_data:
            values["wrapped_key"] = ""  # forget the key too: a copy of the data stays unreadable
        async with self.engine.begin() as conn:
            result = await conn.execute(transfers.update().where(
                transfers.c.id == upload.id,
                transfers.c.state == upload.state.value).values(**values))
        if result.rowcount != 1:
            raise Conflict("The upload changed meanwhile.", code="upload_changed")
        updated = _apply(upload, values)
        live = self.live.pop(upload.id, None)
        if live is not None:
            live.upload = updated
            with contextlib.suppress(OSError):
                await self.in_thread(functools.partial(
                    live.writer.close, done=new is UploadState.COMPLETE))
        if not new.has_data:
            await self.in_thread(self.store.remove, upload.blob_id)
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
            await self.journal.append(upload.session_id, kind, data, author=author,
                                      allow_ended=True)
        except BrokerError as error:
            log.warning("could not record %s for upload %s: %s", kind, upload.id, error)


def gone_message(upload: Upload) -> str:
    reasons = {
        UploadState.DAMAGED: "it was damaged in transfer",
        UploadState.REJECTED: "it was refused",
        UploadState.CANCELLED: "it was cancelled",
        UploadState.EXPIRED: "it was left unfinished too long",
        UploadState.REMOVED: "it was removed",
    }
    return f"This file is no longer available: {reasons.get(upload.state, upload.state)}."


def row_of(upload: Upload) -> dict[str, Any]:
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


def upload_from_row(row: Any) -> Upload:
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
