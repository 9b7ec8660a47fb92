"""API tokens with scopes, names, expiry and last use: made, listed and revoked by their
owners and admins over the API; expired and revoked ones refused like unknown ones; a
token makes none that can do more than itself; tokens from before scopes keep their
owner's full rights (migration 0017)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

import broker.db
from broker.audit import AuditService
from broker.clock import FakeClock
from broker.core import Broker
from broker.hashing import Hasher
from broker.settings import Settings
from broker.technicians import ALL_SCOPES, Scope
from broker.technicians.tokens import LAST_USED_EVERY, TokenStore, parse_expiry

from .conftest import Tech
from .test_intake_migration import _upgrade

MakeTech = Callable[..., Awaitable[Tech]]


async def _call(client: TestClient, method: str, path: str, token: str, status: int,
                **kwargs: Any) -> Any:
    response = await client.request(method, path, headers={"Authorization": f"Bearer {token}"},
                                    **kwargs)
    assert response.status == status, await response.text()
    return response if response.status == 204 else await response.json()


async def _token(broker: Broker, tech: Tech, *scopes: Scope, **kwargs: Any) -> str:
    return (await broker.technicians.tokens.create(tech.technician.id, frozenset(scopes),
                                                   **kwargs))[1]


async def test_tokens_made_listed_and_revoked_by_their_owner(
        client: TestClient, tech: Tech, clock: FakeClock) -> None:
    made = await _call(client, "POST", "/api/v1/tokens", tech.token, 201, json={
        "name": " Help  desk ", "scopes": ["sessions:read", "deliveries"],
        "expires_in_days": 30})
    assert made["token"].startswith("sbt_") and made["name"] == "Help desk"
    assert made["scopes"] == ["sessions:read", "deliveries"]
    assert made["expires_at"] == "2027-02-14T08:00:00+00:00" and not made["expired"]
    listed = (await _call(client, "GET", "/api/v1/tokens", tech.token, 200))["tokens"]
    assert [t["id"] for t in listed] == [made["id"], 1] and "token" not in listed[0]
    assert listed[1]["scopes"] == [s.value for s in Scope]  # the fixture's: every scope
    # The new token reads sessions; it starts none and manages no tokens.
    await _call(client, "GET", "/api/v1/sessions", made["token"], 200)
    refused = await client.post("/api/v1/sessions", headers={
        "Authorization": f"Bearer {made['token']}"})
    assert refused.status == 403 and (await refused.json())["error"] == "insufficient_scope"
    assert refused.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", scope="sessions:write"')
    await _call(client, "GET", "/api/v1/tokens", made["token"], 403)
    # Revoked: refused at once, like a token the broker never made.
    await _call(client, "DELETE", f"/api/v1/tokens/{made['id']}", tech.token, 204)
    gone = await client.get("/api/v1/sessions", headers={
        "Authorization": f"Bearer {made['token']}"})
    assert gone.status == 401
    assert gone.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    await _call(client, "DELETE", f"/api/v1/tokens/{made['id']}", tech.token, 404)
    assert [t["id"] for t in (await _call(client, "GET", "/api/v1/tokens", tech.token,
                                          200))["tokens"]] == [1]


async def test_expired_tokens_are_refused_even_when_remembered(
        client: TestClient, broker: Broker, tech: Tech, clock: FakeClock) -> None:
    token = await _token(broker, tech, Scope.SESSIONS_READ, expires_at=clock.now() + 60)
    await _call(client, "GET", "/api/v1/sessions", token, 200)  # now remembered
    clock.advance(60)
    response = await client.get("/api/v1/sessions", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 401
    assert (await response.json())["message"] == "This API token has expired."
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    listed = (await _call(client, "GET", "/api/v1/tokens", tech.token, 200))["tokens"]
    assert listed[0]["expired"] is True


async def test_last_use_is_written_at_most_once_a_minute(
        client: TestClient, broker: Broker, tech: Tech, clock: FakeClock) -> None:
    token = await _token(broker, tech, Scope.SESSIONS_READ)

    async def last_used() -> str | None:
        listed = (await _call(client, "GET", "/api/v1/tokens", tech.token, 200))["tokens"]
        return str(listed[0]["last_used_at"]) if listed[0]["last_used_at"] else None

    assert await last_used() is None
    await _call(client, "GET", "/api/v1/sessions", token, 200)
    first = await last_used()
    assert first == "2027-01-15T08:00:00+00:00"
    clock.advance(LAST_USED_EVERY - 1)
    await _call(client, "GET", "/api/v1/sessions", token, 200)
    assert await last_used() == first
    clock.advance(1)
    await _call(client, "GET", "/api/v1/sessions", token, 200)
    assert await last_used() == "2027-01-15T08:01:00+00:00"


async def test_a_token_makes_no_token_that_can_do_more(
        client: TestClient, broker: Broker, tech: Tech, clock: FakeClock) -> None:
    limited = await _token(broker, tech, Scope.ADMIN, expires_at=clock.now() + 3600)
    for body, code in (({"scopes": ["admin", "sessions:write"]}, "insufficient_scope"),
                       ({"scopes": ["admin"]}, "invalid_expiry"),
                       ({"scopes": ["admin"], "expires_in_days": 1}, "invalid_expiry"),
                       ({"scopes": []}, "invalid_scope"),
                       ({"scopes": ["root"]}, "invalid_scope"),
                       ({"scopes": ["admin"], "expires_at": "2020-01-01"}, "invalid_expiry")):
        response = await client.post("/api/v1/tokens", json=body,
                                     headers={"Authorization": f"Bearer {limited}"})
        assert (await response.json())["error"] == code, body
    made = await _call(client, "POST", "/api/v1/tokens", limited, 201, json={
        "scopes": ["admin"], "expires_at": "2027-01-15T08:30:00Z"})
    assert made["expires_at"] == "2027-01-15T08:30:00+00:00"


async def test_admin_scope_gives_no_admin_rights_to_a_technician(
        client: TestClient, broker: Broker, make_tech: MakeTech) -> None:
    """A token never does more than its owner: `admin` lets a non-admin manage their own
    tokens, not technicians. And an admin's token without `admin` manages nothing."""
    alice, root = await make_tech("Alice"), await make_tech("Root", admin=True)
    alice_admin = await _token(broker, alice, Scope.ADMIN)
    await _call(client, "POST", "/api/v1/technicians", alice_admin, 403,
                json={"email": "eve@example.com", "name": "Eve"})
    await _call(client, "GET", "/api/v1/tokens?all=true", alice_admin, 403)
    await _call(client, "GET", f"/api/v1/tokens?technician_id={root.technician.id}",
                alice_admin, 403)
    root_sessions = await _token(broker, root, Scope.SESSIONS_WRITE, Scope.DELIVERIES)
    for method, path, body in (
            ("POST", "/api/v1/technicians", {"email": "eve@example.com", "name": "Eve"}),
            ("POST", f"/api/v1/technicians/{alice.technician.id}/password-reset", None),
            ("PATCH", f"/api/v1/technicians/{alice.technician.id}", {"admin": True}),
            ("DELETE", "/api/v1/tokens/1", None)):
        answer = await _call(client, method, path, root_sessions, 403, json=body)
        assert answer["error"] == "insufficient_scope", path
    # The admin's full token sees and revokes everybody's.
    everybody = (await _call(client, "GET", "/api/v1/tokens?all=true", root.token,
                             200))["tokens"]
    assert {t["technician"]["name"] for t in everybody} == {"Alice", "Root"}
    await _call(client, "DELETE", "/api/v1/tokens/1", root.token, 204)  # Alice's first
    await _call(client, "GET", "/api/v1/sessions", alice.token, 401)
    # Alice cannot see or revoke Root's.
    await _call(client, "DELETE", f"/api/v1/tokens/{everybody[0]['id']}", alice_admin, 404)


async def test_pages_and_public_routes_take_no_api_token(
        client: TestClient, broker: Broker, tech: Tech) -> None:
    token = await _token(broker, tech, *ALL_SCOPES)
    # The dashboard's socket and the pages go by the login cookie alone.
    page = await client.get("/dashboard", headers={"Authorization": f"Bearer {token}"},
                            allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/login"


def test_expiries() -> None:
    now = 1_800_000_000.0
    assert parse_expiry("90d", now) == now + 90 * 86_400
    assert parse_expiry("12h", now) == now + 12 * 3_600
    assert parse_expiry("2027-03-31", now) == 1_806_451_200.0
    assert parse_expiry("2027-03-31T02:00:00+02:00", now) == 1_806_451_200.0


async def test_tokens_from_before_scopes_keep_full_rights(tmp_path: Path,
                                                          database_url: str) -> None:
    settings = Settings(data_dir=tmp_path, database_url=database_url)
    engine = broker.db.create_engine(settings.sqlalchemy_url)
    hasher = Hasher(b"k" * 32)
    old = "sbt_" + "o" * 43
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade("0016"))
            await conn.execute(sa.text(
                "INSERT INTO technicians (id, email, display_name, password_hash, is_admin, "
                "created_at, must_change_password) VALUES (1, 'a@example.com', 'A', 'x', "
                "false, 0, false)"))
            await conn.execute(sa.text(
                "INSERT INTO api_tokens (technician_id, token_hash, created_at) "
                "VALUES (1, :hash, 0)"), {"hash": hasher.hash("api", old)})
            await conn.run_sync(_upgrade("0017"))
        clock = FakeClock()
        tokens = TokenStore(engine, hasher, clock, AuditService(engine, clock))
        grant = await tokens.resolve(old)
        assert grant.technician.id == 1 and grant.token.scopes == ALL_SCOPES
        assert grant.token.name == "" and grant.token.expires_at is None
        # New tokens get no scope by default from the database.
        with pytest.raises(sa.exc.IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(sa.text(
                    "INSERT INTO api_tokens (technician_id, token_hash, created_at) "
                    "VALUES (1, 'h2', 0)"))
    finally:
        await engine.dispose()
