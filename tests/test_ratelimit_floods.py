"""Flood limits (token buckets by key) counted in Redis for several nodes, as the customer
form's limits per address and for everyone are (broker.core.floods)."""

from __future__ import annotations

import logging
import random

import pytest
import redis.asyncio as redis

from broker.clock import FakeClock
from broker.errors import RateLimited
from broker.ratelimit import Floods, LocalFloods
from broker.redislimits import RedisFloods

from .test_ratelimit import shared_redis  # noqa: F401  (the fixture)


async def _take(floods: Floods, key: str) -> float | None:
    """Retry-After seconds if refused, else None."""
    try:
        await floods.take(key)
    except RateLimited as limited:
        return limited.retry_after
    return None


def _nodes(shared: tuple[redis.Redis, str], clock: FakeClock, count: int, *, rate: float,
           burst: int) -> list[RedisFloods]:
    client, prefix = shared
    return [RedisFloods(client, prefix, clock, LocalFloods(clock, rate=rate, burst=burst),
                        rate=rate, burst=burst) for _ in range(count)]


async def test_redis_buckets_decide_as_the_local_ones(
        shared_redis: tuple[redis.Redis, str]) -> None:  # noqa: F811
    rng = random.Random(3)
    steps = [(rng.choice([0.0] * 6 + [0.3, 1.0, 5.0, 40.0]), rng.choice("abc"))
             for _ in range(300)]

    async def run(make: type[LocalFloods] | None) -> list[float | None]:
        clock = FakeClock()
        floods: Floods = (LocalFloods(clock, rate=0.5, burst=3) if make
                          else _nodes(shared_redis, clock, 1, rate=0.5, burst=3)[0])
        outcomes = []
        for advance, key in steps:
            clock.advance(advance)
            outcomes.append(await _take(floods, key))
        return outcomes

    expected = await run(LocalFloods)
    assert await run(None) == pytest.approx(expected)
    assert sum(wait is not None for wait in expected) > 30  # the schedule did hit the limit


async def test_two_nodes_share_one_bucket(shared_redis: tuple[redis.Redis, str],  # noqa: F811
                                          clock: FakeClock) -> None:
    one, two = _nodes(shared_redis, clock, 2, rate=1 / 60, burst=2)
    assert await _take(one, "10.0.0.1") is None
    assert await _take(two, "10.0.0.1") is None
    assert await _take(one, "10.0.0.1") == pytest.approx(60)  # not a fresh burst at node 1
    assert await _take(two, "10.0.0.1") == pytest.approx(60)
    assert await _take(two, "10.0.0.2") is None  # another address has its own
    clock.advance(60)
    assert await _take(two, "10.0.0.1") is None
    assert await _take(one, "10.0.0.1") == pytest.approx(60)


async def test_without_redis_a_node_counts_alone_and_says_so(
        clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    client = redis.Redis.from_url("redis://127.0.0.1:1")  # nothing listens there
    try:
        (node,) = _nodes((client, "sb:test:"), clock, 1, rate=1 / 60, burst=1)
        with caplog.at_level(logging.WARNING):
            assert await _take(node, "10.0.0.1") is None
            assert await _take(node, "10.0.0.1") == pytest.approx(60)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "counting on this node only" in warnings[0]
    finally:
        await client.aclose()
