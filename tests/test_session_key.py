"""GET /api/v1/sessions/{id} shows the live key and join link to the session's owner and to
admins, from any browser, until the key is used, revoked or expired; never to others."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.settings import Settings

from .conftest import Tech, join, login, start_session

MakeTech = Callable[..., Awaitable[Tech]]


async def _view(client: TestClient, session_id: str, headers: dict[str, str] | None = None
                ) -> dict[str, Any]:
    response = await client.get(f"/api/v1/sessions/{session_id}", headers=headers)
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def test_the_owner_and_admins_see_the_live_key(
        aiohttp_client: Any, client: TestClient, make_tech: MakeTech) -> None:
    owner, admin, other = (await make_tech("Owner"), await make_tech("Root", admin=True),
                           await make_tech("Other"))
    started = await start_session(client, owner)
    session_id = started["session_id"]
    for who in (owner, admin):
        seen = await _view(client, session_id, who.auth)
        assert (seen["key"], seen["join_url"]) == (started["key"], started["join_url"])
    # Another browser of the owner: the cookie login sees it as well.
    browser = await aiohttp_client(client.server)
    await login(browser, owner.technician.email)
    assert (await _view(browser, session_id))["key"] == started["key"]
    # Offered the session, another technician reads it, but not its key.
    await client.post(f"/api/v1/sessions/{session_id}/transfer", headers=owner.auth,
                      json={"to_technician_id": other.technician.id, "note": "take it"})
    offered = await _view(client, session_id, other.auth)
    assert "key" not in offered and "join_url" not in offered
    # Used: gone for everybody, and the end user never sees it.
    joined = await join(client, started["key"])
    participant = {"Authorization": f"Bearer {joined['participant_token']}"}
    for headers in (owner.auth, admin.auth, participant):
        assert "key" not in await _view(client, session_id, headers)


async def test_no_key_after_revocation_or_expiry(client: TestClient, tech: Tech,
                                                 clock: FakeClock, settings: Settings) -> None:
    revoked = await start_session(client, tech)
    response = await client.post(f"/api/v1/sessions/{revoked['session_id']}/revoke",
                                 headers=tech.auth)
    assert response.status == 200
    assert "key" not in await _view(client, revoked["session_id"], tech.auth)
    lapsing = await start_session(client, tech)
    clock.advance(settings.key_lifetime_seconds - 1)
    assert "key" in await _view(client, lapsing["session_id"], tech.auth)
    clock.advance(1)
    assert "key" not in await _view(client, lapsing["session_id"], tech.auth)
