"""The webhook_messages table: claiming what is due, recording how each attempt went.

A message may be claimed when it is due and every earlier message of its queue (its
session) for the same endpoint is finished: so one session's events reach an endpoint in
order, while other sessions' go on beside a failing one. Claims are conditional UPDATEs:
of several nodes (or workers) that find the same message due, one gets it.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..clock import Clock
from ..errors import NotFound
from ..schema import webhook_endpoints, webhook_messages
from . import payloads
from .model import MAX_ATTEMPTS, OPEN, RETRY_DELAYS, TEST_EVENT, WAITING, Message, MessageStatus
from .transport import Reply

_M = webhook_messages.c
_E = webhook_endpoints.c
# A claim outlives the request's time limit by this much before another node may take over.
_CLAIM_MARGIN = 60.0
LOG_LIMIT = 100
_WAITING = [status.value for status in WAITING]
_OPEN = [status.value for status in OPEN]


@dataclasses.dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    event_id: str
    body: str
    attempts: int  # including this one


def _due(now: float) -> sa.ColumnElement[bool]:
    """Waiting and due, or claimed by a node that never finished (it stopped)."""
    return sa.or_(sa.and_(_M.status.in_(_WAITING), _M.next_attempt_at <= now),
                  sa.and_(_M.status == MessageStatus.SENDING.value, _M.claimed_until < now))


class Outbox:
    """Messages of every endpoint, as one node claims and finishes them."""

    def __init__(self, engine: AsyncEngine, clock: Clock, node_id: str, *,
                 timeout: float, disable_after: float) -> None:
        self._engine = engine
        self._clock = clock
        self._node_id = node_id
        self._claim_seconds = timeout + _CLAIM_MARGIN
        self._disable_after = disable_after

    async def claim(self, endpoint_id: str, limit: int) -> list[Claimed]:
        """Up to `limit` due messages of the endpoint, each the first open one of its queue."""
        now = self._clock.now()
        earlier = webhook_messages.alias("earlier")
        blocked = sa.exists().where(earlier.c.endpoint_id == _M.endpoint_id,
                                    earlier.c.queue == _M.queue, earlier.c.id < _M.id,
                                    earlier.c.status.in_(_OPEN))
        async with self._engine.connect() as conn:
            ids = (await conn.scalars(sa.select(_M.id).where(
                _M.endpoint_id == endpoint_id, _due(now), ~blocked)
                .order_by(_M.id).limit(limit))).all()
        if not ids:
            return []
        async with self._engine.begin() as conn:
            rows = (await conn.execute(webhook_messages.update().where(
                _M.id.in_(ids), _due(now)).values(
                status=MessageStatus.SENDING.value, attempts=_M.attempts + 1,
                claimed_by=self._node_id, claimed_until=now + self._claim_seconds,
                updated_at=now).returning(_M.id, _M.event_id, _M.body, _M.attempts))).all()
        return sorted((Claimed(row.id, row.event_id, row.body, row.attempts) for row in rows),
                      key=lambda message: message.id)

    async def finish(self, endpoint_id: str, claimed: Claimed, reply: Reply) -> bool:
        """Record an attempt; True when it disabled the endpoint (a day of failures)."""
        now = self._clock.now()
        values: dict[str, Any] = {"response_status": reply.status, "error": reply.error,
                                  "claimed_by": None, "claimed_until": None,
                                  "updated_at": now}
        if reply.ok:
            values.update(status=MessageStatus.DELIVERED.value, delivered_at=now)
        elif claimed.attempts < MAX_ATTEMPTS:
            values.update(status=MessageStatus.RETRYING.value,
                          next_attempt_at=now + RETRY_DELAYS[claimed.attempts - 1])
        else:
            values["status"] = MessageStatus.FAILED.value
        async with self._engine.begin() as conn:
            await conn.execute(webhook_messages.update().where(
                _M.id == claimed.id, _M.status == MessageStatus.SENDING.value,
                _M.claimed_by == self._node_id).values(**values))
            this = _E.id == endpoint_id
            if reply.ok:
                await conn.execute(webhook_endpoints.update().where(
                    this, _E.failing_since.is_not(None)).values(failing_since=None))
                return False
            await conn.execute(webhook_endpoints.update().where(
                this, _E.failing_since.is_(None)).values(failing_since=now))
            disabled = await conn.execute(webhook_endpoints.update().where(
                this, _E.enabled, _E.failing_since <= now - self._disable_after).values(
                enabled=False, updated_at=now,
                disabled_reason=f"Every delivery failed for {self._disable_after / 3600:g} "
                                f"hours (last: {reply.error})."[:500]))
        return disabled.rowcount == 1

    async def release_interrupted(self, nodes: list[str] | None) -> int:
        """Attempts cut off when these nodes (None: any node) stopped go out again now (a
        receiver may get an event twice, and de-duplicates it by its id)."""
        now = self._clock.now()
        cut_off = _M.status == MessageStatus.SENDING.value
        if nodes is not None:
            cut_off = sa.and_(cut_off, _M.claimed_by.in_(nodes))
        async with self._engine.begin() as conn:
            released = await conn.execute(webhook_messages.update().where(cut_off).values(
                status=MessageStatus.RETRYING.value, next_attempt_at=now, claimed_by=None,
                claimed_until=None, updated_at=now))
        return int(released.rowcount)

    async def add_test(self, endpoint_id: str) -> Message:
        now = self._clock.now()
        event_id = "evt_test_" + secrets.token_urlsafe(12)
        text = payloads.body(event_id, TEST_EVENT, now, payloads.test_data(endpoint_id))
        async with self._engine.begin() as conn:
            message_id = (await conn.execute(webhook_messages.insert().values(
                endpoint_id=endpoint_id, event_id=event_id, event_type=TEST_EVENT,
                session_id=None, queue=event_id, body=text,
                status=MessageStatus.PENDING.value, attempts=0, next_attempt_at=now,
                created_at=now, updated_at=now).returning(_M.id))).scalar_one()
        return await self.get(endpoint_id, message_id)

    async def get(self, endpoint_id: str, message_id: int) -> Message:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(webhook_messages).where(
                _M.id == message_id, _M.endpoint_id == endpoint_id))).first()
        if row is None:
            raise NotFound("No such delivery.")
        return Message.from_row(row)

    async def log(self, endpoint_id: str, *, limit: int = LOG_LIMIT,
                  before: int | None = None, status: MessageStatus | None = None
                  ) -> list[Message]:
        """The endpoint's deliveries, newest first."""
        query = sa.select(webhook_messages).where(_M.endpoint_id == endpoint_id)
        if before is not None:
            query = query.where(_M.id < before)
        if status is not None:
            query = query.where(_M.status == status.value)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(_M.id.desc()).limit(limit))).all()
        return [Message.from_row(row) for row in rows]

    async def prune(self, older_than: float) -> int:
        """Forget finished deliveries last changed before `older_than`."""
        async with self._engine.begin() as conn:
            pruned = await conn.execute(webhook_messages.delete().where(
                _M.status.in_([MessageStatus.DELIVERED.value, MessageStatus.FAILED.value]),
                _M.updated_at < older_than))
        return int(pruned.rowcount)
