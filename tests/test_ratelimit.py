"""Guessing limits on key redemption and login (in memory, and shared in Redis by several
nodes), and the chat flood bucket."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
from aiohttp.test_utils import TestClient
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from broker.clock import FakeClock
from broker.errors import RateLimited
from broker.ratelimit import Guesses, GuessLimiter, TokenBucket
from broker.redislimits import RedisGuessLimiter
from broker.settings import Settings
from web import create_app
from web.state import get_broker

from .cluster import DEFAULT_REDIS, free_port, skip_or_fail
from .conftest import PASSWORD, csrf_from


def test_lockout_doubles_after_free_failures() -> None:
    clock = FakeClock()
    limiter = GuessLimiter(clock, free=3, base_delay=1, max_delay=60, global_per_minute=None)
    for _ in range(3):
        limiter.check("a")
        limiter.failure("a")
    limiter.check("a")  # three free failures cost nothing
    waits = []
    for _ in range(8):
        limiter.failure("a")
        with pytest.raises(RateLimited) as info:
            limiter.check("a")
        waits.append(info.value.retry_after)
        clock.advance(info.value.retry_after)
        limiter.check("a")
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    limiter.check("b")  # other clients are not affected


def test_quiet_client_starts_over() -> None:
    clock = FakeClock()
    limiter = GuessLimiter(clock, free=1, base_delay=1, max_delay=10, global_per_minute=None)
    limiter.failure("a")
    limiter.failure("a")  # locked for 1 s
    clock.advance(12)  # quiet for longer than max_delay after the lockout ended
    limiter.failure("a")
    limiter.check("a")  # counted as the first failure again


def test_a_maximal_lockout_does_not_count_as_quiet() -> None:
    clock = FakeClock()
    limiter = GuessLimiter(clock, free=0, base_delay=1, max_delay=8, global_per_minute=None)
    waits = []
    for _ in range(7):
        limiter.failure("a")
        with pytest.raises(RateLimited) as info:
            limiter.check("a")
        waits.append(info.value.retry_after)
        clock.advance(info.value.retry_after)
    assert waits == [1, 2, 4, 8, 8, 8, 8]


def test_global_limit_locks_everyone_and_grows() -> None:
    clock = FakeClock()
    limiter = GuessLimiter(clock, free=1000, base_delay=2, max_delay=3600, global_per_minute=5)
    for i in range(6):
        limiter.failure(f"client{i}")
    with pytest.raises(RateLimited) as first:
        limiter.check("somebody-new")
    limiter.check("somebody-new", include_global=False)  # link tokens are not globally limited
    clock.advance(first.value.retry_after)
    for i in range(6):
        limiter.failure(f"other{i}")
    with pytest.raises(RateLimited) as second:
        limiter.check("x")
    assert second.value.retry_after == 2 * first.value.retry_after


def test_token_bucket() -> None:
    clock = FakeClock()
    bucket = TokenBucket(clock, rate=2, burst=3)
    for _ in range(3):
        bucket.take()
    with pytest.raises(RateLimited):
        bucket.take()
    clock.advance(0.5)
    bucket.take()


@pytest.fixture
async def limited(aiohttp_client: Any, tmp_path: Path, clock: FakeClock,
                  database_url: str) -> TestClient:
    settings = Settings(data_dir=tmp_path / "data", redeem_free_failures=3,
                        redeem_base_delay_seconds=10, redeem_global_failures_per_minute=20,
                        trust_forwarded_for=True, login_failures_per_minute=2,
                        database_url=database_url)
    return await aiohttp_client(create_app(settings, clock=clock))


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def test_guessing_gets_429_with_retry_after(limited: TestClient, clock: FakeClock) -> None:
    for _ in range(3):
        response = await limited.post("/api/v1/join", json={"key": "111111111"},
                                      headers=_from("10.0.0.1"))
        assert response.status == 404
    response = await limited.post("/api/v1/join", json={"key": "111111111"},
                                  headers=_from("10.0.0.1"))
    assert response.status == 404  # the fourth failure is answered, then the lock starts
    response = await limited.post("/api/v1/join", json={"key": "111111111"},
                                  headers=_from("10.0.0.1"))
    assert response.status == 429
    assert response.headers["Retry-After"] == "10"
    assert (await response.json())["error"] == "rate_limited"
    other = await limited.post("/api/v1/join", json={"key": "111111111"},
                               headers=_from("10.0.0.2"))
    assert other.status == 404
    clock.advance(10)
    response = await limited.post("/api/v1/join", json={"key": "111111111"},
                                  headers=_from("10.0.0.1"))
    assert response.status == 404


async def test_global_limit_spares_link_tokens(limited: TestClient) -> None:
    broker = get_broker(limited.app)
    technician = await broker.technicians.add("t@example.com", "T", PASSWORD)
    token = await broker.technicians.create_token(technician.id)
    for i in range(21):  # many addresses, each under its own limit
        await limited.post("/api/v1/join", json={"key": "111111111"},
                           headers=_from(f"10.1.0.{i}"))
    response = await limited.post("/api/v1/join", json={"key": "111111111"},
                                  headers=_from("10.2.0.1"))
    assert response.status == 429
    started = await (await limited.post("/api/v1/sessions",
                                         headers={"Authorization": f"Bearer {token}"})).json()
    by_link = await limited.post("/api/v1/join",
                                 json={"token": started["join_url"].rsplit("/", 1)[1]},
                                 headers=_from("10.2.0.1"))
    assert by_link.status == 200


async def test_malformed_keys_do_not_count(limited: TestClient) -> None:
    for _ in range(10):
        response = await limited.post("/api/v1/join", json={"key": "12"},
                                      headers=_from("10.3.0.1"))
        assert response.status == 400


async def test_login_guessing_is_limited(limited: TestClient) -> None:
    broker = get_broker(limited.app)
    await broker.technicians.add("t@example.com", "T", PASSWORD)
    statuses = []
    for _ in range(4):
        page = await limited.get("/login")
        response = await limited.post("/login", data={
            "email": "t@example.com", "password": "wrong password",
            "_csrf": csrf_from(await page.text())}, headers=_from("10.4.0.1"),
            allow_redirects=False)
        statuses.append(response.status)
    assert statuses == [401, 401, 401, 429]


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


async def test_concurrent_guesses_share_no_check(limited: TestClient) -> None:
    responses = await asyncio.gather(*(
        limited.post("/api/v1/join", json={"key": "111111111"}, headers=_from("10.5.0.1"))
        for _ in range(40)))
    statuses = [r.status for r in responses]
    assert statuses.count(404) == 4  # three free failures, then the one that locks
    assert statuses.count(429) == 36


async def test_forwarded_for_uses_the_hop_our_proxy_added(limited: TestClient) -> None:
    for i in range(6):  # the client varies the first entry; the proxy's entry stays
        await limited.post("/api/v1/join", json={"key": "111111111"},
                           headers=_from(f"1.2.3.{i}, 10.6.0.1"))
    response = await limited.post("/api/v1/join", json={"key": "111111111"},
                                  headers=_from("9.9.9.9, 10.6.0.1"))
    assert response.status == 429


async def test_an_office_behind_one_address_joins_at_once(limited: TestClient) -> None:
    broker = get_broker(limited.app)
    technician = await broker.technicians.add("t@example.com", "T", PASSWORD)
    token = await broker.technicians.create_token(technician.id)
    keys = []
    for _ in range(16):
        started = await (await limited.post("/api/v1/sessions", headers={
            "Authorization": f"Bearer {token}"})).json()
        keys.append(started["key"])
    responses = await asyncio.gather(*(
        limited.post("/api/v1/join", json={"key": key}, headers=_from("10.7.0.1"))
        for key in keys))
    assert [r.status for r in responses] == [200] * 16  # honest joins wait, never 429


# -- the same limits counted in Redis, for several nodes ---------------------------------


@pytest.fixture
async def shared_redis() -> AsyncIterator[tuple[redis.Redis, str]]:
    """The real Redis of the multi-node tests and a random key prefix, removed afterwards."""
    url = os.environ.get("BROKER_TEST_REDIS_URL") or DEFAULT_REDIS
    client = redis.Redis.from_url(url)
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        await client.aclose()
        skip_or_fail(f"the shared guessing limits need Redis at {url}: {error}")
    prefix = f"sb:test-{secrets.token_hex(6)}:guess:"
    try:
        yield client, prefix
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def _nodes(shared: tuple[redis.Redis, str], clock: FakeClock, count: int,
           **policy: Any) -> list[RedisGuessLimiter]:
    """`count` nodes' limiters, each with its own in-memory counts, sharing one Redis."""
    client, prefix = shared
    return [RedisGuessLimiter(client, prefix, clock, GuessLimiter(clock, **policy))
            for _ in range(count)]


async def _try(limiter: Guesses, client: str, *, fail: bool = True,
               include_global: bool = True, work: float = 0.0) -> float | None:
    """One attempt; the Retry-After seconds if it was refused, else None."""
    try:
        async with limiter.attempt(client, include_global=include_global) as attempt:
            await asyncio.sleep(work)
            if fail:
                attempt.fail()
    except RateLimited as limited:
        return limited.retry_after
    return None


async def test_shared_limits_decide_exactly_as_one_node(
        shared_redis: tuple[redis.Redis, str], caplog: pytest.LogCaptureFixture) -> None:
    """A random schedule of attempts against the in-memory limiter and against the Redis
    one: the same refusals with the same waits, and the same lockouts logged."""
    rng = random.Random(7)
    steps = [(rng.choice([0.0] * 8 + [0.1, 0.5, 1.0, 3.0, 8.0, 25.0, 70.0]),
              rng.choice(["a", "b", "c", "d", "e", "f"]), rng.random() < 0.8,
              rng.random() < 0.9) for _ in range(400)]
    policy = {"free": 2, "base_delay": 0.5, "max_delay": 20.0, "global_per_minute": 6}

    async def run(limiter: Guesses, clock: FakeClock) -> tuple[list[float | None], list[str]]:
        caplog.clear()
        outcomes = []
        for advance, client, include_global, fail in steps:
            clock.advance(advance)
            outcomes.append(await _try(limiter, client, fail=fail,
                                       include_global=include_global))
        return outcomes, [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]

    caplog.set_level(logging.WARNING)
    alone = FakeClock()
    expected, logged = await run(GuessLimiter(alone, **policy), alone)  # type: ignore[arg-type]
    together = FakeClock()
    (shared,) = _nodes(shared_redis, together, 1, **policy)
    assert await run(shared, together) == (expected, logged)
    # The schedule did exercise both limits.
    assert sum(wait is not None for wait in expected) > 20
    assert any("global guessing limit reached" in line for line in logged)
    assert any("locked out" in line for line in logged)


async def test_failures_at_two_nodes_count_as_at_one(
        shared_redis: tuple[redis.Redis, str], clock: FakeClock) -> None:
    one, two = _nodes(shared_redis, clock, 2, free=3, base_delay=1, max_delay=60,
                      global_per_minute=None)
    for node in (one, two, one, two):  # three free failures, then the one that locks
        assert await _try(node, "10.0.0.1") is None
    assert await _try(one, "10.0.0.1") == 1
    assert await _try(two, "10.0.0.1") == 1
    assert await _try(two, "10.0.0.2") is None  # other clients are not affected
    clock.advance(1)
    assert await _try(two, "10.0.0.1", fail=False) is None
    assert await _try(one, "10.0.0.1") is None  # the fifth failure: locked for 2 s
    assert await _try(two, "10.0.0.1") == 2


async def test_the_global_limit_holds_across_nodes(
        shared_redis: tuple[redis.Redis, str], clock: FakeClock) -> None:
    one, two = _nodes(shared_redis, clock, 2, free=1000, base_delay=2, max_delay=3600,
                      global_per_minute=5)
    for i in range(6):
        assert await _try((one, two)[i % 2], f"client{i}") is None
    assert await _try(one, "somebody-new") == 2
    assert await _try(two, "somebody-new") == 2
    assert await _try(two, "somebody-new", include_global=False) is None  # link tokens
    clock.advance(2)
    for i in range(6):
        assert await _try((two, one)[i % 2], f"other{i}") is None
    assert await _try(one, "x") == 4  # tripped again before it recovered: doubled


async def test_concurrent_guesses_at_two_nodes_share_no_check(
        shared_redis: tuple[redis.Redis, str], clock: FakeClock) -> None:
    nodes = _nodes(shared_redis, clock, 2, free=3, base_delay=10, max_delay=60,
                   global_per_minute=None)
    outcomes = await asyncio.gather(*(_try(nodes[i % 2], "10.5.0.1", work=0.002)
                                      for i in range(40)))
    assert outcomes.count(None) == 4  # three free failures, then the one that locks
    assert outcomes.count(10) == 36


async def test_an_office_at_two_nodes_joins_at_once(
        shared_redis: tuple[redis.Redis, str], clock: FakeClock) -> None:
    nodes = _nodes(shared_redis, clock, 2, free=3, base_delay=10, max_delay=60,
                   global_per_minute=None)
    outcomes = await asyncio.gather(*(_try(nodes[i % 2], "10.7.0.1", fail=False, work=0.002)
                                      for i in range(16)))
    assert outcomes == [None] * 16  # honest attempts wait for their turn, never 429


async def test_shared_records_expire_and_turns_are_given_back(
        shared_redis: tuple[redis.Redis, str], clock: FakeClock) -> None:
    client, prefix = shared_redis
    (node,) = _nodes(shared_redis, clock, 1, free=0, base_delay=1, max_delay=60,
                     global_per_minute=0)
    assert await _try(node, "10.8.0.1") is None
    keys = sorted([key.decode() async for key in client.scan_iter(match=prefix + "*")])
    assert keys == [f"{prefix}client:10.8.0.1", f"{prefix}global"]  # no turn left behind
    for key in keys:
        assert 0 < await client.pttl(key) <= (60 + 1 + 60) * 1000


async def test_without_redis_each_node_still_limits(
        clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """Redis unreachable: a node falls back to its own counts (docs/security.md)."""
    unreachable = redis.Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    try:
        (node,) = _nodes((unreachable, "sb:down:"), clock, 1, free=1, base_delay=5,
                         max_delay=60, global_per_minute=None)
        assert await _try(node, "10.9.0.1") is None
        assert await _try(node, "10.9.0.1") is None
        assert await _try(node, "10.9.0.1") == 5
        assert "counting on this node only" in caplog.text
    finally:
        await unreachable.aclose()
