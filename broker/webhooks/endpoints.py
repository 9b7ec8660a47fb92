"""The webhook_endpoints table: registering, changing, rotating and removing endpoints.

Secrets are made here, returned once (to the admin who made or rotated them) and stored
sealed with the broker's Sealer, so the broker can sign with them and a copy of the
database alone cannot. They are never logged and never part of an `Endpoint`.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..clock import Clock
from ..errors import InvalidInput, NotFound
from ..hashing import Sealer
from ..schema import webhook_endpoints, webhook_messages
from . import signing
from .model import MAX_DESCRIPTION, WAITING, Endpoint, EventType
from .targets import TargetPolicy

_T = webhook_endpoints.c
MAX_ENDPOINTS = 50


def _from_row(row: Any, now: float) -> Endpoint:
    rotating = row.previous_until if row.previous_secret and row.previous_until \
        and row.previous_until > now else None
    return Endpoint(row.id, row.url, row.description,
                    tuple(EventType(t) for t in json.loads(row.event_types)), row.enabled,
                    row.disabled_reason, rotating, row.failing_since, row.active_since,
                    row.created_at, row.updated_at)


def _description(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise InvalidInput(f"description must be text of at most {MAX_DESCRIPTION} "
                           "characters.")
    return value.strip()


class EndpointStore:
    """Endpoints and their sealed secrets."""

    def __init__(self, engine: AsyncEngine, sealer: Sealer, clock: Clock,
                 policy: TargetPolicy, *, rotation_grace: float) -> None:
        self._engine = engine
        self._sealer = sealer
        self._clock = clock
        self._policy = policy
        self._grace = rotation_grace

    async def add(self, url: str, event_types: tuple[EventType, ...], description: Any,
                  created_by: int | None) -> tuple[Endpoint, str]:
        """A new endpoint and its secret (shown once)."""
        url = self._policy.check_url(url)
        endpoint_id = "wh_" + secrets.token_urlsafe(12)
        secret = signing.new_secret()
        now = self._clock.now()
        async with self._engine.begin() as conn:
            count = await conn.scalar(sa.select(sa.func.count()).select_from(webhook_endpoints))
            if int(count or 0) >= MAX_ENDPOINTS:
                raise InvalidInput(f"At most {MAX_ENDPOINTS} webhook endpoints.",
                                   code="too_many_webhooks")
            await conn.execute(webhook_endpoints.insert().values(
                id=endpoint_id, url=url, description=_description(description),
                event_types=json.dumps([t.value for t in event_types]), enabled=True,
                secret=self._sealer.seal(secret, _context(endpoint_id)),
                created_by=created_by, active_since=now, created_at=now, updated_at=now))
        return await self.get(endpoint_id), secret

    async def get(self, endpoint_id: str) -> Endpoint:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(webhook_endpoints).where(
                _T.id == endpoint_id))).first()
        if row is None:
            raise NotFound("No such webhook.")
        return _from_row(row, self._clock.now())

    async def all(self) -> list[Endpoint]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(webhook_endpoints)
                                       .order_by(_T.created_at, _T.id))).all()
        now = self._clock.now()
        return [_from_row(row, now) for row in rows]

    async def enabled(self, conn: AsyncConnection) -> list[Endpoint]:
        rows = (await conn.execute(sa.select(webhook_endpoints).where(_T.enabled))).all()
        now = self._clock.now()
        return [_from_row(row, now) for row in rows]

    async def change(self, endpoint_id: str, *, url: str | None = None,
                     event_types: tuple[EventType, ...] | None = None,
                     description: Any = None, enabled: bool | None = None) -> Endpoint:
        now = self._clock.now()
        values: dict[str, Any] = {"updated_at": now}
        if url is not None:
            values["url"] = self._policy.check_url(url)
        if event_types is not None:
            values["event_types"] = json.dumps([t.value for t in event_types])
        if description is not None:
            values["description"] = _description(description)
        if enabled is False:
            values.update(enabled=False, disabled_reason="Disabled by an admin.")
        this = _T.id == endpoint_id
        async with self._engine.begin() as conn:
            changed = await conn.execute(webhook_endpoints.update().where(this).values(**values))
            if changed.rowcount != 1:
                raise NotFound("No such webhook.")
            if enabled and (await conn.execute(webhook_endpoints.update().where(
                    this, sa.not_(_T.enabled)).values(
                    enabled=True, disabled_reason=None, failing_since=None,
                    active_since=now))).rowcount:
                # A fresh start: a day of failures counts from now, and what waited for a
                # retry goes out now.
                await conn.execute(webhook_messages.update().where(
                    webhook_messages.c.endpoint_id == endpoint_id,
                    webhook_messages.c.status.in_([s.value for s in WAITING]))
                    .values(next_attempt_at=now))
        return await self.get(endpoint_id)

    async def remove(self, endpoint_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(webhook_messages.delete().where(
                webhook_messages.c.endpoint_id == endpoint_id))
            removed = await conn.execute(webhook_endpoints.delete().where(
                _T.id == endpoint_id))
        if removed.rowcount != 1:
            raise NotFound("No such webhook.")

    async def rotate(self, endpoint_id: str) -> tuple[Endpoint, str]:
        """A new secret (shown once); the current one still signs for the grace period."""
        secret = signing.new_secret()
        now = self._clock.now()
        context = _context(endpoint_id)
        async with self._engine.begin() as conn:
            current = await conn.scalar(sa.select(_T.secret).where(_T.id == endpoint_id))
            if current is None:
                raise NotFound("No such webhook.")
            await conn.execute(webhook_endpoints.update().where(_T.id == endpoint_id).values(
                secret=self._sealer.seal(secret, context), previous_secret=current,
                previous_until=now + self._grace, updated_at=now))
        return await self.get(endpoint_id), secret

    async def signing_keys(self, endpoint_id: str) -> tuple[str, list[str]]:
        """The endpoint's URL and the secrets that sign for it now, newest first."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(
                _T.url, _T.secret, _T.previous_secret, _T.previous_until).where(
                _T.id == endpoint_id))).first()
        if row is None:
            raise NotFound("No such webhook.")
        context = _context(endpoint_id)
        keys = [self._sealer.open(row.secret, context)]
        if row.previous_secret and (row.previous_until or 0) > self._clock.now():
            keys.append(self._sealer.open(row.previous_secret, context))
        return row.url, keys


def _context(endpoint_id: str) -> str:
    """What each sealed secret is bound to: a secret moved to another row does not open."""
    return f"webhook:{endpoint_id}"
