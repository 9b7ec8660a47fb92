"""Guessing limits on key redemption and login, and the chat flood bucket."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.errors import RateLimited
from broker.ratelimit import GuessLimiter, TokenBucket
from broker.settings import Settings
from web import create_app
from web.state import get_broker

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
