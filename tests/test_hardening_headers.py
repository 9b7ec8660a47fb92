"""Security headers on every response: a walk over every route of the router, with every
kind of caller, plus file downloads sent by a thread and by the event loop."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

from broker.clock import FakeClock
from broker.settings import Settings
from web import create_app
from web.state import get_broker

from .conftest import PASSWORD
from .hardening_support import journey, running

SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Referrer-Policy": "no-referrer"}


def _sample_path(resource: web.AbstractResource, values: dict[str, str]) -> str:
    info = resource.get_info()
    if "prefix" in info:  # static files
        return f"{info['prefix']}/app.css"
    template = info.get("formatter") or info["path"]
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: values.get(m.group(1), "1"), template)


def _assert_secured(method: str, path: str, status: int, headers: dict[str, str]) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (method, path, status, name, headers)
    if headers.get("Content-Type", "").startswith("text/html"):
        assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), (
            method, path, status)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_every_route_answers_with_security_headers(tmp_path: Path, clock: FakeClock,
                                                         database_url: str, tls: bool) -> None:
    """Plain: downloads leave from a sending thread; over TLS spoken by aiohttp: from the
    loop (tests/test_transfer.py shows which path each takes). Each route is asked
    without credentials, as the technician and as the end user, and whatever comes back
    (2xx, 3xx, 4xx) carries the headers."""
    app = create_app(Settings(data_dir=tmp_path / "data", database_url=database_url,
                              transfer_min_free_bytes=0), clock=clock)
    async with running(app, tmp_path, tls=tls) as broker:
        core = get_broker(app)
        technician = await core.technicians.add("ana@example.com", "Ana", PASSWORD)
        token = await core.technicians.create_token(technician.id)
        j = await journey(broker, "ana@example.com", token)
        for auth in ({"Authorization": f"Bearer {j.participant_token}"},
                     {"Authorization": f"Bearer {token}"}):
            status, headers, _ = await broker.request("GET", j.upload_path, headers=auth)
            assert status == 200
            _assert_secured("GET", j.upload_path, status, headers)

        values = {"session_id": j.session_id, "upload_id": j.upload_path.rsplit("/", 1)[1],
                  "token": j.link_token, "lang": "de"}
        seen: dict[tuple[str, str], set[int]] = {}
        for route in app.router.routes():
            if route.method == "*":
                continue
            path = _sample_path(route.resource, values) if route.resource else "/"
            for auth in ({}, {"Authorization": f"Bearer {token}"},
                         {"Authorization": f"Bearer {j.participant_token}"}):
                kwargs: dict[str, Any] = {"headers": auth}
                if route.method in ("POST", "PUT", "PATCH"):
                    kwargs["json"] = {}
                status, headers, _ = await broker.request(route.method, path, **kwargs)
                assert status < 500, (route.method, path, status)
                _assert_secured(route.method, path, status, headers)
                seen.setdefault((route.method, URL(path).path), set()).add(status)
        assert seen[("GET", "/")] == {303}  # a redirect raised as an exception
        assert len(seen) > 50
