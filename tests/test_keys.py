"""Support keys: spelling, expiry, single use under concurrency, revocation, storage."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.core import Broker
from broker.errors import KeyRejected
from broker.keys import format_code, parse_code, parse_token
from broker.schema import support_keys

from .conftest import Tech, join, start_session


def test_code_spelling() -> None:
    assert format_code("482913075") == "482 913 075"
    for typed in ("482 913 075", "482-913-075", " 482913075 ", "482.913.075", "482–913–075"):
        assert parse_code(typed) == "482913075"
    for bad in ("", "48291307", "4829130755", "48291307x", "٤٨٢٩١٣٠٧٥"):
        with pytest.raises(KeyRejected) as info:
            parse_code(bad)
        assert info.value.code == "key_malformed"
    with pytest.raises(KeyRejected):
        parse_token("../../etc/passwd")


async def test_start_returns_key_link_and_expiry(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    assert started["state"] == "waiting"
    digits = started["key"].replace(" ", "")
    assert len(digits) == 9 and digits.isdigit() and started["key"][3] == " "
    assert started["join_url"].startswith("http://127.0.0.1:8080/j/")
    assert started["expires_at"].endswith("+00:00")


async def test_only_hashes_are_stored(client: TestClient, broker: Broker, tech: Tech) -> None:
    started = await start_session(client, tech)
    token = started["join_url"].rsplit("/", 1)[1]
    async with broker.engine.connect() as conn:
        row = (await conn.execute(sa.select(support_keys))).one()
    stored = " ".join(str(value) for value in row)
    assert started["key"].replace(" ", "") not in stored
    assert token not in stored


@pytest.mark.parametrize("spelling", ["key", "token"])
async def test_key_expires_after_lifetime(client: TestClient, clock: FakeClock, tech: Tech,
                                          spelling: str) -> None:
    started = await start_session(client, tech)
    body = ({"key": started["key"]} if spelling == "key"
            else {"token": started["join_url"].rsplit("/", 1)[1]})
    clock.advance(3600)
    response = await client.post("/api/v1/join", json=body)
    assert response.status == 410
    assert (await response.json())["error"] == "key_expired"


async def test_key_works_until_just_before_expiry(client: TestClient, clock: FakeClock,
                                                  tech: Tech) -> None:
    started = await start_session(client, tech)
    clock.advance(3599)
    joined = await join(client, started["key"])
    assert joined["technician_name"] == "Alice"


async def test_key_is_single_use(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    await join(client, started["key"].replace(" ", "-"))
    for body in ({"key": started["key"]}, {"token": started["join_url"].rsplit("/", 1)[1]}):
        response = await client.post("/api/v1/join", json=body)
        assert response.status == 409
        assert (await response.json())["error"] == "key_used"


async def test_concurrent_redemptions_exactly_one_wins(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    token = started["join_url"].rsplit("/", 1)[1]
    bodies = [{"key": started["key"]}, {"token": token}] * 5
    responses = await asyncio.gather(*(client.post("/api/v1/join", json=b) for b in bodies))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] + [409] * 9
    errors = {(await r.json()).get("error") for r in responses if r.status != 200}
    assert errors == {"key_used"}


async def test_revoke(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    response = await client.post(f"/api/v1/sessions/{started['session_id']}/revoke",
                                 headers=tech.auth)
    assert response.status == 200
    assert (await response.json())["end_reason"] == "key_revoked"
    response = await client.post("/api/v1/join", json={"key": started["key"]})
    assert response.status == 410
    assert (await response.json())["error"] == "key_revoked"
    again = await client.post(f"/api/v1/sessions/{started['session_id']}/revoke",
                              headers=tech.auth)
    assert again.status == 409


async def test_cannot_revoke_after_join(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    await join(client, started["key"])
    response = await client.post(f"/api/v1/sessions/{started['session_id']}/revoke",
                                 headers=tech.auth)
    assert response.status == 409
    assert (await response.json())["error"] == "not_waiting"


@pytest.mark.parametrize("body, status, code", [
    ({"key": "123"}, 400, "key_malformed"),
    ({"key": "abc def ghi"}, 400, "key_malformed"),
    ({"token": "short"}, 400, "key_malformed"),
    ({}, 400, "key_malformed"),
    ({"key": 482913075}, 400, "invalid_input"),
    ({"token": "A" * 32}, 404, "key_unknown"),
])
async def test_join_errors(client: TestClient, body: dict[str, object], status: int,
                           code: str) -> None:
    response = await client.post("/api/v1/join", json=body)
    assert response.status == status
    assert (await response.json())["error"] == code


async def test_join_rejects_malformed_json(client: TestClient) -> None:
    for raw in (b"{", b"[]", b"\xff\xfe"):
        response = await client.post("/api/v1/join", data=raw,
                                     headers={"Content-Type": "application/json"})
        assert response.status == 400
        assert (await response.json())["error"] == "bad_json"


async def test_unknown_typed_code(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    wrong = "000000000" if started["key"] != "000 000 000" else "000000001"
    response = await client.post("/api/v1/join", json={"key": wrong})
    assert response.status == 404
    assert (await response.json())["error"] == "key_unknown"


async def test_key_lifetime_is_capped(client: TestClient, tech: Tech) -> None:
    too_long = await client.post("/api/v1/sessions", headers=tech.auth,
                                 json={"key_lifetime_seconds": 10 * 86400})
    assert too_long.status == 400
    short = await client.post("/api/v1/sessions", headers=tech.auth,
                              json={"key_lifetime_seconds": 600})
    assert short.status == 201


async def test_unjoined_sessions_end_when_their_key_expires(client: TestClient, broker: Broker,
                                                            clock: FakeClock, tech: Tech) -> None:
    waiting = await start_session(client, tech)
    joined = await start_session(client, tech)
    await join(client, joined["key"])
    clock.advance(1800)
    assert await broker.sessions.end_unjoined() == 0
    clock.advance(1800)
    assert await broker.sessions.end_unjoined() == 1
    listing = {s["session_id"]: s for s in (await (await client.get(
        "/api/v1/sessions", headers=tech.auth)).json())["sessions"]}
    assert listing[waiting["session_id"]]["state"] == "ended"
    assert listing[waiting["session_id"]]["end_reason"] == "key_expired"
    assert listing[joined["session_id"]]["state"] == "active"  # no session length limit
