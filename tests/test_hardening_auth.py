"""Bearer credentials that fail: 401 with the RFC 6750 challenge, whatever their shape."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from .conftest import Tech, join, start_session

INVALID = 'Bearer error="invalid_token"'


@pytest.mark.parametrize("token", [
    "nonsense",  # neither prefix
    "Sbt_wrongcase",
    "sbt_" + "A" * 43,  # the right shape, but no such token
])
async def test_a_bad_technician_token_is_401_invalid_token(client: TestClient,
                                                           token: str) -> None:
    for method, path in (("GET", "/api/v1/sessions"), ("POST", "/api/v1/sessions"),
                         ("GET", "/api/v1/handoffs")):
        response = await client.request(method, path,
                                        headers={"Authorization": f"Bearer {token}"})
        assert response.status == 401, (method, path, await response.text())
        assert response.headers["WWW-Authenticate"] == INVALID
        assert (await response.json())["error"] == "unauthenticated"


async def test_a_bad_token_on_session_routes_is_401_invalid_token(client: TestClient,
                                                                  tech: Tech) -> None:
    started = await start_session(client, tech)
    session_id = started["session_id"]
    for token in ("nonsense", "sbp_" + "A" * 43, "sbt_" + "A" * 43):
        for path in (f"/api/v1/sessions/{session_id}",
                     f"/api/v1/sessions/{session_id}/events",
                     f"/api/v1/sessions/{session_id}/files/"):
            response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status == 401, (token, path, await response.text())
            assert response.headers["WWW-Authenticate"] == INVALID


async def test_no_credential_is_401_with_the_scheme_only(client: TestClient) -> None:
    response = await client.get("/api/v1/sessions")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_participant_token_on_a_technician_route_stays_403(client: TestClient,
                                                                   tech: Tech) -> None:
    joined = await join(client, (await start_session(client, tech))["key"])
    response = await client.get("/api/v1/sessions", headers={
        "Authorization": f"Bearer {joined['participant_token']}"})
    assert response.status == 403
    assert "WWW-Authenticate" not in response.headers
