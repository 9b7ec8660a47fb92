"""The parts that let several nodes share one database and one Redis, each on its own:
the journal numbering one session from two writers, the bus codec, the Redis bus with its
resync, and presence across nodes. tests/test_cluster.py runs whole broker processes."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.bus import LocalBus
from broker.buscodec import CodecError, broker_codec
from broker.clock import FakeClock
from broker.db import create_engine, migrate
from broker.delivery.model import Attempt, Channel, Delivery, DeliveryStatus
from broker.errors import Conflict
from broker.handoff.model import Handoff, HandoffNotice, HandoffState
from broker.intake.model import (
    AlertLevel,
    Request,
    RequestKind,
    RequestStatus,
    Severity,
    Target,
    TargetAlert,
)
from broker.metrics import Metrics
from broker.nodes import SharedRoster
from broker.protocol.queue import QueuePosition
from broker.protocol.rtc import RtcCandidate, RtcConfig
from broker.protocol.session import Presence
from broker.redisbus import RedisBus
from broker.schema import events, sessions, technicians
from broker.sessions import Actor, Event, Journal, Role, Session, SessionState, Signal, Takeover
from broker.settings import Settings
from broker.technicians import Ending, TechnicianChanged

from .cluster import RedisServer

USER = Actor(Role.END_USER, 1, "Dana")
TECH = Actor(Role.TECHNICIAN, 1, "Alice")


@pytest.fixture
async def engines(tmp_path: Path, database_url: str) -> AsyncIterator[list[AsyncEngine]]:
    """Two engines on one database, as two nodes have; one active session "s"."""
    url = Settings(data_dir=tmp_path, database_url=database_url).sqlalchemy_url
    pair = [create_engine(url), create_engine(url)]
    await migrate(pair[0])
    async with pair[0].begin() as conn:
        await conn.execute(technicians.insert().values(
            id=1, email="a@example.com", display_name="Alice", password_hash="x",
            is_admin=False, created_at=0.0))
        await conn.execute(sessions.insert().values(id="s", technician_id=1, state="active",
                                                    created_at=0.0))
    yield pair
    for engine in pair:
        await engine.dispose()


async def _journals(engines: list[AsyncEngine]) -> list[Journal]:
    journals = [Journal(engine, LocalBus(), FakeClock(), Metrics(), shared=True)
                for engine in engines]
    for journal in journals:
        await journal.start()
    return journals


async def test_two_writers_number_one_session_without_gaps_or_twins(
        engines: list[AsyncEngine]) -> None:
    one, two = await _journals(engines)
    results = await asyncio.gather(*(
        (one if i % 2 else two).append("s", "message", {"text": f"line {i}"}, author=USER,
                                       client_id=f"c{i}") for i in range(60)))
    seqs = sorted(seq for seq, _ in results)
    assert seqs == list(range(1, 61))
    async with engines[0].connect() as conn:
        stored = (await conn.scalars(sa.select(events.c.seq).where(events.c.session_id == "s")
                                     .order_by(events.c.seq))).all()
    assert list(stored) == seqs
    for journal in (one, two):
        await journal.close()


async def test_a_resend_at_the_other_node_is_answered_with_the_first_seq(
        engines: list[AsyncEngine]) -> None:
    one, two = await _journals(engines)
    first, resent = await one.append("s", "message", {"text": "hi"}, author=USER,
                                     client_id="same")
    assert not resent
    # Node two never saw it: the database tells it, and nothing is stored twice.
    again, resent = await two.append("s", "message", {"text": "hi"}, author=USER,
                                     client_id="same")
    assert (again, resent) == (first, True)
    both = await asyncio.gather(
        one.append("s", "message", {"text": "x"}, author=USER, client_id="race"),
        two.append("s", "message", {"text": "x"}, author=USER, client_id="race"))
    assert both[0][0] == both[1][0] and sorted(r for _, r in both) == [False, True]
    assert len(await one.events_after("s", 0)) == 2
    for journal in (one, two):
        await journal.close()


async def test_a_state_change_made_by_the_other_node_is_respected(
        engines: list[AsyncEngine]) -> None:
    one, two = await _journals(engines)
    await one.append("s", "message", {"text": "cached"}, author=USER)  # both cache "active"
    await two.append("s", "message", {"text": "cached"}, author=USER)
    await one.append("s", "ended", {"reason": "ended_by_technician"}, author=TECH,
                     new_state=SessionState.ENDED)
    with pytest.raises(Conflict) as refused:
        await two.append("s", "message", {"text": "too late"}, author=USER)
    assert refused.value.code == "session_ended"
    assert await two.state("s") is SessionState.ENDED
    for journal in (one, two):
        await journal.close()


def test_every_bus_message_survives_the_codec() -> None:
    codec = broker_codec()
    handoff = Handoff("h", "s", 1, 2, None, "note", False, HandoffState.PENDING, 1.0, 2.0,
                      None, None, None)
    messages: list[Any] = [
        Event("s", 3, "message", 1.5, USER.public(), {"text": "hi"}, "c1"),
        Session("s", 1, "Alice", SessionState.RECONNECTING, 1.0, 2.0, None, None, "Dana",
                3.0, 4.0, (2, 3)),
        Delivery("d", "s", 1, Channel.SMS, "+4917", "de", DeliveryStatus.SENT, "SM1", None, 1,
                 None, 1.0, 2.0, (Attempt(1.0, "accepted", "ok"),)),
        HandoffNotice(handoff, "Alice", "Bob", None, "Dana", "active"),
        Signal("s", Presence(technician=True, end_user=False), exclude="p1"),
        Signal("s", RtcConfig("x", [{"urls": ["stun:a"]}], "all", None), to="t1"),
        Signal("s", RtcCandidate("x", "candidate:1 1 udp 1 127.0.0.1 9 typ host", "0", 0)),
        Takeover("s", "p1", "conn"),
        # Customers' requests: a queue's places and the teams' alerts.
        Session("s", None, None, SessionState.ACTIVE, 1.0, 1.0, None, None, "Dana", None),
        HandoffNotice(dataclasses.replace(handoff, from_technician_id=None), "Dana", None,
                      "Tier 1", "Dana", "active"),
        Signal("s", QueuePosition(3, None), to="p1"),
        TargetAlert(AlertLevel.DUE_SOON, Request(
            "r", RequestKind.CHAT, 1, "s", Severity.HIGH, "Dana", "d@example.com", None,
            "Help", {"order": "A-1"}, "de", 1.0, 2.0, 1.8, Target(Severity.HIGH, 3600, False),
            RequestStatus.WAITING), "Tier 1"),
        # Credentials ending: every node closes the sockets they opened.
        TechnicianChanged(4, logins_ended=True, ending=Ending.PASSWORD_CHANGED,
                          kept_login="l1"),
        TechnicianChanged(4, ending=Ending.LOGOUT, ended_login="l2"),
    ]
    for message in messages:
        assert codec.loads(codec.dumps(message)) == message
    with pytest.raises(CodecError):
        codec.dumps(dataclasses.make_dataclass("Unknown", [("x", int)])(1))


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    from .cluster import services
    services()  # skip (or fail under CI) without the machine's PostgreSQL and Redis
    server = RedisServer(tmp_path / "redis")
    await server.start()
    yield server
    await server.stop()


async def _until(test: Any, seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while not test():
            await asyncio.sleep(0.01)


async def test_the_redis_bus_carries_messages_and_resyncs_after_redis_restarts(
        redis: RedisServer) -> None:
    codec = broker_codec()
    metrics = [Metrics(), Metrics()]
    one, two = (RedisBus(redis.url, codec, metrics[i], node_id=f"n{i}", prefix="sb:test:")
                for i in range(2))
    await one.start()
    await two.start()
    try:
        got: list[Any] = []
        resyncs: list[int] = []
        local: list[Any] = []
        unsubscribe = two.subscribe("session:s", got.append, lambda: resyncs.append(1))
        one.subscribe("session:s", local.append)
        await _until(lambda: resyncs)  # the subscription took effect
        event = Event("s", 1, "message", 1.0, USER.public(), {"text": "hi"}, "c1")
        one.publish("session:s", event)
        assert local == [event]  # at once, on the publishing node, exactly once
        await _until(lambda: got)
        assert got == [event]
        await asyncio.sleep(0.1)
        assert local == [event]  # Redis's echo of its own message was ignored

        await redis.stop()
        one.publish("session:s", Signal("s", Presence(technician=True, end_user=True)))
        await asyncio.sleep(0.5)
        await redis.start()
        count = len(resyncs)
        await _until(lambda: len(resyncs) > count)  # back: fill what may have been missed
        one.publish("session:s", event)
        await _until(lambda: len(got) >= 2)
        assert got[-1] == event
        assert (metrics[1].registry.get_sample_value("broker_bus_reconnects_total") or 0) >= 1
        unsubscribe()
    finally:
        await one.close()
        await two.close()


async def test_presence_across_nodes_and_a_dead_node(engines: list[AsyncEngine]) -> None:
    clock = FakeClock()
    one, two = (SharedRoster(engine, clock, f"n{i}", f"http://n{i}", heartbeat_seconds=1,
                             timeout_seconds=3) for i, engine in enumerate(engines))
    assert await one.start() == [] and await two.start() == []
    try:
        assert await one.arrive("s", Role.TECHNICIAN)
        assert await two.arrive("s", Role.END_USER)
        assert not await two.arrive("s", Role.END_USER)  # a second socket: no new row
        assert await one.present("s") == {Role.TECHNICIAN, Role.END_USER}
        await two.dashboard_opened(7)
        await one.beat()
        assert one.board.online(7) and not one.board.here(7)
        # Node two stops beating: after the timeout node one takes it for dead.
        clock.advance(5)
        await one.beat()
        assert await one.present("s") == {Role.TECHNICIAN}
        dead = await one.sweep_dead()
        assert dead.nodes == ("n1",) and dead.sessions == ("s",)
        assert (await one.sweep_dead()).nodes == ()  # once
        # Node two was only stalled: its next heartbeat writes its rows again.
        await two.beat()
        assert await one.present("s") == {Role.TECHNICIAN, Role.END_USER}
    finally:
        await one.close()
        await two.close()
