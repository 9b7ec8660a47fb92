"""A socket counts the login cookie only from the broker's own pages (docs/security.md,
"WebSocket origin check"): an `Origin` must name the scheme, host and port of
`public_url` (unset: of the request itself); a handshake without one (not a browser)
counts it as before. Tokens in `hello` are no ambient credential and count from anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broker.settings import Settings

from .conftest import Tech, login, start_session

PUBLIC = "https://support.example.com"


async def _hello_answer(client: TestClient, tech: Tech, origin: str | None,
                        token: str | None = None) -> str:
    """What the session socket answers a cookie login's (or `token`'s) hello from `origin`:
    "welcome", or the error's code."""
    await login(client, tech.technician.email)
    started = await start_session(client, tech)
    headers = {"Origin": origin} if origin is not None else {}
    ws = await client.ws_connect(f"/api/v1/sessions/{started['session_id']}/ws",
                                 headers=headers)
    try:
        await ws.send_json({"type": "hello", "token": token})
        frame: dict[str, Any] = await ws.receive_json(timeout=5)
        return "welcome" if frame["type"] == "welcome" else str(frame["code"])
    finally:
        await ws.close()


class TestWithPublicUrl:
    @pytest.fixture
    def settings(self, tmp_path: Path, database_url: str) -> Settings:
        return Settings(data_dir=tmp_path / "data", port=8080, database_url=database_url,
                        public_url=PUBLIC)

    @pytest.mark.parametrize("origin, answer", [
        (PUBLIC, "welcome"),
        ("https://SUPPORT.example.com:443", "welcome"),  # the same origin, written out
        (None, "welcome"),  # not a browser: the cookie counts, as documented
        ("http://support.example.com", "unauthenticated"),  # wrong scheme
        ("https://support.example.com:8443", "unauthenticated"),  # wrong port
        ("https://evil.example.com", "unauthenticated"),  # wrong host
        ("https://support.example.com.evil.example", "unauthenticated"),
        ("null", "unauthenticated"),  # a sandboxed frame or a file
        ("nonsense", "unauthenticated"),
    ])
    async def test_the_origin_must_be_the_public_urls(
            self, client: TestClient, tech: Tech, origin: str | None, answer: str) -> None:
        assert await _hello_answer(client, tech, origin) == answer

    async def test_the_host_the_request_went_to_does_not_count(
            self, client: TestClient, tech: Tech) -> None:
        """Behind a proxy, the Host a request arrives with is not the public one."""
        own = f"http://{client.server.host}:{client.server.port}"
        assert await _hello_answer(client, tech, own) == "unauthenticated"

    async def test_a_token_counts_from_any_origin(self, client: TestClient,
                                                  tech: Tech) -> None:
        assert await _hello_answer(client, tech, "https://evil.example.com",
                                   tech.token) == "welcome"


class TestWithoutPublicUrl:
    """The request's own scheme and Host stand in for the public URL."""

    @pytest.mark.parametrize("origin, answer", [
        ("http://{host}:{port}", "welcome"),
        ("https://{host}:{port}", "unauthenticated"),  # https on an http broker
        ("http://{host}:1", "unauthenticated"),
        ("http://{host}", "unauthenticated"),  # port 80
        ("http://other.example:{port}", "unauthenticated"),
    ])
    async def test_the_origin_must_be_the_requests_own(
            self, client: TestClient, tech: Tech, origin: str, answer: str) -> None:
        origin = origin.format(host=client.server.host, port=client.server.port)
        assert await _hello_answer(client, tech, origin) == answer
