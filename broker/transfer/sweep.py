"""The transfer sweep, run by the broker every `sweep_interval_seconds` with the injected
clock: unfinished uploads expire, those of ended sessions are cancelled, files of
sessions that ended longer ago than the retention are removed, and idle uploads give
back their open file."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa

from ..errors import Conflict
from ..schema import sessions, transfers
from ..sessions import SessionState
from .model import Upload, UploadState
from .uploads import TAKEOVER_SECONDS, Uploads, upload_from_row

log = logging.getLogger(__name__)

# Idle partial uploads give back their open file and buffered tail after this long.
IDLE_SECONDS = 600.0


async def sweep(uploads: Uploads) -> None:
    """Expire unfinished uploads, cancel those of ended sessions, remove the files of
    sessions that ended longer ago than the retention, and let idle uploads go."""
    now = uploads.clock.now()
    async with uploads.engine.connect() as conn:
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
                   sessions.c.ended_at <= now - uploads.settings.transfer_retention_seconds)
        )).all()
    for row in unfinished:
        upload = upload_from_row(row)
        live = uploads.live.get(upload.id)
        if live is not None and live.lock.locked():
            if row.session_state != SessionState.ENDED.value:
                continue  # data is arriving: not expired
            if live.source is not None:
                live.source.abort()
        ended = row.session_state == SessionState.ENDED.value
        await _end_unfinished(uploads, upload,
                              UploadState.CANCELLED if ended else UploadState.EXPIRED,
                              "session_ended" if ended else "expired")
    for row in retired:
        await _settle(uploads, upload_from_row(row), UploadState.REMOVED, "retention")
    # Their events were written into ended sessions: let the journal drop them again.
    for session_id in {row.session_id for row in retired} | {
            row.session_id for row in unfinished
            if row.session_state == SessionState.ENDED.value}:
        uploads.journal.forget(session_id)
    idle_since = uploads.monotonic() - IDLE_SECONDS
    for live in list(uploads.live.values()):
        if not live.lock.locked() and live.touched < idle_since:
            uploads.live.pop(live.upload.id, None)
            await uploads.in_thread(live.writer.close)


async def _end_unfinished(uploads: Uploads, upload: Upload, state: UploadState,
                          reason: str) -> None:
    live = uploads.live.get(upload.id)
    if live is None:
        await _settle(uploads, upload, state, reason)
        return
    try:
        async with asyncio.timeout(TAKEOVER_SECONDS):
            await live.lock.acquire()
    except TimeoutError:
        return  # next sweep
    try:
        await _settle(uploads, live.upload, state, reason)
    finally:
        live.lock.release()


async def _settle(uploads: Uploads, upload: Upload, state: UploadState, reason: str) -> None:
    try:
        await uploads.set_state(upload, state, reason=reason)
    except Conflict:
        pass  # changed meanwhile; the sweep looks again next time
    except Exception:
        log.exception("could not move upload %s to %s", upload.id, state)
