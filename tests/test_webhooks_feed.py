"""The dispatcher misses no event that commits after a later-numbered one: on PostgreSQL
two transactions may commit out of the order their `gid`s were drawn in. Here one holds
an event uncommitted while the journal stores another; the later one goes out at once,
the held one as soon as it commits. And what happened before any endpoint existed is
never sent (SQLite skips reading it)."""

from __future__ import annotations

import asyncio
import json

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from broker.core import Broker
from broker.schema import events, webhook_cursors

from .conftest import Tech, start_session
from .test_webhooks import admin as admin  # noqa: F401,PLC0414 - a fixture
from .test_webhooks import clock as clock  # noqa: F401,PLC0414 - a fixture
from .test_webhooks import receiver as receiver  # noqa: F401,PLC0414 - a fixture
from .test_webhooks import register
from .test_webhooks import settings as settings  # noqa: F401,PLC0414 - a fixture
from .webhook_support import Receiver


async def _event_ids(broker: Broker, webhook_id: str) -> set[str]:
    return {message.event_id for message in await broker.webhooks.outbox.log(webhook_id)}


async def _until(broker: Broker, webhook_id: str, event_id: str) -> None:
    async with asyncio.timeout(10):
        while event_id not in await _event_ids(broker, webhook_id):
            await asyncio.sleep(0.02)


async def test_an_event_that_commits_late_is_not_skipped(
        client: TestClient, broker: Broker, admin: Tech, tech: Tech,
        receiver: Receiver) -> None:
    if broker.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: nothing commits out of order")
    made = await register(client, admin, receiver, ["session.created", "session.ended"])
    first, second = await start_session(client, tech), await start_session(client, tech)
    await _until(broker, made["id"], f"evt_{second['session_id']}.1")
    held = f"evt_{first['session_id']}.50"
    async with broker.engine.connect() as conn:
        late = await conn.begin()
        await conn.execute(events.insert().values(
            session_id=first["session_id"], seq=50, type="ended", sender=None,
            created_at=broker.clock.now(),
            body=json.dumps({"author": None, "data": {"reason": "held back"}})))
        # Drawn after the held one, committed before it:
        ended = await client.post(f"/api/v1/sessions/{second['session_id']}/end",
                                  headers=tech.auth)
        assert ended.status == 200
        await _until(broker, made["id"], f"evt_{second['session_id']}.2")
        assert held not in await _event_ids(broker, made["id"])
        await late.commit()
    await _until(broker, made["id"], held)


async def test_what_happened_before_any_endpoint_is_never_sent(
        client: TestClient, broker: Broker, admin: Tech, tech: Tech,
        receiver: Receiver) -> None:
    """With no endpoint enabled, SQLite's dispatcher skips the journal unread; either way,
    an endpoint made later gets what happens after it, and nothing from before."""
    before = await start_session(client, tech)
    if broker.engine.dialect.name == "sqlite":
        async with asyncio.timeout(10):  # the cursor moves on while nobody listens
            while (await _cursor(broker)) < await _last_event(broker):
                await asyncio.sleep(0.02)
    made = await register(client, admin, receiver, ["session.created", "session.ended"])
    after = await start_session(client, tech)
    await _until(broker, made["id"], f"evt_{after['session_id']}.1")
    ended = await client.post(f"/api/v1/sessions/{before['session_id']}/end",
                              headers=tech.auth)
    assert ended.status == 200
    await _until(broker, made["id"], f"evt_{before['session_id']}.2")
    sent = await _event_ids(broker, made["id"])
    assert f"evt_{before['session_id']}.1" not in sent
    assert sent == {f"evt_{after['session_id']}.1", f"evt_{before['session_id']}.2"}


async def _cursor(broker: Broker) -> int:
    async with broker.engine.connect() as conn:
        return int(await conn.scalar(sa.select(webhook_cursors.c.position).where(
            webhook_cursors.c.name == "events")) or 0)


async def _last_event(broker: Broker) -> int:
    async with broker.engine.connect() as conn:
        return int(await conn.scalar(sa.text("SELECT max(rowid) FROM events")) or 0)
