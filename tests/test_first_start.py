"""First start: while no admin exists, no route makes one (ScreenConnect's setup-wizard
bypass, CVE-2024-1709, created an admin through a route meant for the first start). The
first admin comes only from `supportbroker serve`'s printed one-time password
(`Broker.ensure_admin`) or from `supportbroker technician add --admin` on the command line.

Every route of the router is called with everything that could ask for an admin: no
credential, a made-up token, and the token and login of a technician who is no admin
(added on the command line); JSON and form bodies name a new admin, or make the caller
one. Afterwards there is still no admin."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestClient

from broker.core import Broker
from broker.schema import technicians

from .conftest import PASSWORD, csrf_from
from .live_broker import router_routes

SOCKETS = ("/ws",)


def _wants_admin(technician_id: int) -> dict[str, Any]:
    return {"email": "mallory@example.com", "name": "Mallory", "display_name": "Mallory",
            "password": PASSWORD, "admin": True, "is_admin": True, "role": "admin",
            "technician_id": technician_id, "required": "off"}


async def _admins(broker: Broker) -> int:
    async with broker.engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).where(
            technicians.c.is_admin)) or 0)


async def _call_every_route(client: TestClient, http: ClientSession, headers: dict[str, str],
                            technician_id: int) -> list[str]:
    """Every route with bodies that ask for an admin; what answered 2xx (for the record)."""
    body = _wants_admin(technician_id)
    page = await (await http.get(client.make_url("/login"))).text()
    csrf = csrf_from(page)
    answered = []
    for method, path in router_routes():
        if method == "HEAD" or path.endswith(SOCKETS):
            continue
        target = re.sub(r"\{technician_id\}", str(technician_id), path)
        target = re.sub(r"\{[^}]+\}", "1", target)
        if target == "/static":
            target = "/static/app.css"
        for kwargs in ({"json": body}, {"data": {**{k: str(v) for k, v in body.items()},
                                                 "_csrf": csrf}}):
            async with http.request(method, client.make_url(target), allow_redirects=False,
                                    headers={**headers, "X-CSRF-Token": csrf},
                                    **kwargs) as response:
                await response.read()
                if response.status < 300:
                    answered.append(f"{method} {path}")
    return answered


async def test_no_route_creates_an_admin_while_none_exists(client: TestClient,
                                                           broker: Broker) -> None:
    assert await broker.technicians.count() == 0
    # Nobody at all, and a made-up token.
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        await _call_every_route(client, http, {}, 1)
        await _call_every_route(client, http, {"Authorization": "Bearer sbt_" + "A" * 43}, 1)
    assert await broker.technicians.count() == 0
    # A technician added on the command line without --admin: with their token, and with
    # their login, asking to be made admin (their own id in every path).
    plain = await broker.technicians.add("ops@example.com", "Ops", PASSWORD)
    token = await broker.technicians.create_token(plain.id)
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        answered = await _call_every_route(client, http, {"Authorization": f"Bearer {token}"},
                                           plain.id)
        assert "GET /api/v1/sessions" in answered  # the token worked: calls got through
        page = await (await http.get(client.make_url("/login"))).text()
        logged_in = await http.post(client.make_url("/login"), allow_redirects=False, data={
            "email": plain.email, "password": PASSWORD, "_csrf": csrf_from(page)})
        assert logged_in.headers["Location"] == "/dashboard"
        await _call_every_route(client, http, {}, plain.id)
    assert await _admins(broker) == 0
    assert [t.email for t in await broker.technicians.all()] == ["ops@example.com"]

    # What `supportbroker serve` does on an empty database makes the first admin; only
    # there, and only once.
    assert await broker.ensure_admin() is None  # not empty any more: it makes none
    assert await _admins(broker) == 0


async def test_the_first_admin_comes_from_the_printed_one_time_password(
        client: TestClient, broker: Broker) -> None:
    created = await broker.ensure_admin()
    assert created is not None
    admin, password = created
    assert admin.is_admin and admin.must_change_password
    assert await broker.ensure_admin() is None  # once
    page = await (await client.get("/login")).text()
    response = await client.post("/login", allow_redirects=False, data={
        "email": admin.email, "password": password, "_csrf": csrf_from(page)})
    # The one-time password reaches the password page alone.
    assert response.headers["Location"] == "/password"
    assert (await client.get("/api/v1/technicians")).status == 403
