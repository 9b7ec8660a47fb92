"""What the hardening tests share: a user's whole journey through a running broker, which
hands back every credential it was given on the way."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, CookieJar, TCPConnector, web
from aiohttp.test_utils import TestServer
from yarl import URL

from .conftest import PASSWORD, csrf_from
from .transfer_support import _tls_context

TUS = {"Tus-Resumable": "1.0.0"}
FILE_BODY = b"hello from the end user\n"


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


@dataclasses.dataclass
class Journey:
    """What a journey left behind: ids to walk the routes with, and every secret."""

    session_id: str = ""
    link_token: str = ""
    participant_token: str = ""
    upload_path: str = ""
    api_token: str = ""
    secrets: dict[str, str] = dataclasses.field(default_factory=dict)

    def keep(self, what: str, value: str) -> str:
        assert value, what
        self.secrets[what] = value
        return value


class Broker:
    """Requests to a broker at `base` (a real server), with one browser's cookie jar."""

    def __init__(self, http: ClientSession, base: URL) -> None:
        self.http = http
        self.base = base

    def url(self, path: str) -> URL:
        return self.base.join(URL(path))

    async def request(self, method: str, path: str, *, status: int | None = None,
                      **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        kwargs.setdefault("allow_redirects", False)
        async with self.http.request(method, self.url(path), **kwargs) as response:
            body = await response.read()
            if status is not None:
                assert response.status == status, (method, path, response.status, body[:300])
            return response.status, dict(response.headers), body


async def journey(broker: Broker, email: str, api_token: str,
                  password: str = PASSWORD) -> Journey:
    """The technician `email` logs in (one wrong password first) and starts sessions with
    the login cookie and with `api_token`; end users join by key (API and form), by link
    (page, language switch, form) and by agent link; everybody chats; a file goes up and
    comes down (bearer and cookie); both transcripts are exported; the technician logs out."""
    j = Journey()
    j.api_token = j.keep("API token", api_token)
    j.keep("password", password)
    # Cookie login through the form, after one failure.
    _, _, page = await broker.request("GET", "/login", status=200)
    csrf = csrf_from(page.decode())
    j.keep("wrong password", "wrong-" + password)
    await broker.request("POST", "/login", status=401, data={
        "email": email, "password": "wrong-" + password, "_csrf": csrf})
    _, _, page = await broker.request("GET", "/login", status=200)
    _, headers, _ = await broker.request("POST", "/login", status=303, data={
        "email": email, "password": password, "_csrf": csrf_from(page.decode())})
    if headers["Location"] == "/password":
        # The admin `serve` made has a one-time password: the first login must replace it.
        _, _, page = await broker.request("GET", "/password", status=200)
        new_password = j.keep("new password", "journey-" + secrets.token_urlsafe(12))
        await broker.request("POST", "/password", status=303, data={
            "current": password, "new": new_password, "repeat": new_password,
            "_csrf": csrf_from(page.decode())})
    _, _, dashboard = await broker.request("GET", "/dashboard", status=200)
    found = re.search(r'data-csrf="([^"]+)"', dashboard.decode())
    assert found
    login_csrf = j.keep("login csrf", found.group(1))
    for cookie in broker.http.cookie_jar:
        j.keep(f"cookie {cookie.key}", cookie.value)
    cookie_auth = {"X-CSRF-Token": login_csrf}

    # A session started with the login cookie; the end user joins with the typed key.
    _, _, body = await broker.request("POST", "/api/v1/sessions", status=201,
                                      headers=cookie_auth, json={})
    started = _json(body)
    j.keep("key 1", started["key"])
    j.keep("link 1", started["join_url"].rsplit("/", 1)[1])
    _, _, body = await broker.request("POST", "/api/v1/join", status=200,
                                      json={"key": started["key"], "name": "Kim"})
    joined = _json(body)
    j.session_id = joined["session_id"]
    j.participant_token = j.keep("participant 1", joined["participant_token"])
    bearer = {"Authorization": f"Bearer {j.participant_token}"}

    # Join by link: the page (in German), the language switch back, the form.
    started = await _start(broker, j, "2")
    j.link_token = token = started["join_url"].rsplit("/", 1)[1]
    _, _, page = await broker.request("GET", f"/j/{token}?lang=de", status=200)
    await broker.request("GET", f"/lang/en?next=/j/{token}", status=303)
    await broker.request("GET", "/lang/en?" + str(URL.build(query={"next": f"/j/{token}"}))
                         .lstrip("?"), status=303)
    await broker.request("POST", "/join", status=303, data={
        "token": token, "name": "Lee", "_csrf": csrf_from(page.decode())})
    # Join by typed key through the form, with the key in the address as a link would.
    started = await _start(broker, j, "3")
    _, _, page = await broker.request("GET", f"/join?key={started['key']}", status=200)
    await broker.request("POST", "/join", status=303, data={
        "key": started["key"], "name": "Max", "_csrf": csrf_from(page.decode())})
    for cookie in broker.http.cookie_jar:
        if cookie.key.startswith("sb_"):
            j.keep(f"cookie {cookie.key}", cookie.value)

    # The agent link: asked for by the end user's page, redeemed by the agent; a browser
    # that opens it by mistake gets a 404 page.
    _, _, body = await broker.request("POST", f"/api/v1/sessions/{j.session_id}/agent-link",
                                      status=201, headers=bearer)
    link = _json(body)["link"]
    j.keep("agent link", link.rsplit("/", 1)[1])
    _, _, body = await broker.request("POST", "/api/v1/agent/join", status=200,
                                      json={"link": link})
    j.keep("agent participant", _json(body)["participant_token"])
    await broker.request("GET", URL(link).path, status=404)

    # The end user chats over the socket, the technician through the API, and the
    # dashboard's socket shows the sessions.
    await _say(broker, j.session_id, j.participant_token, "hello from the end user")
    await broker.request("POST", f"/api/v1/sessions/{j.session_id}/messages", status=201,
                         headers=cookie_auth, json={"text": "hello from the technician"})
    async with broker.http.ws_connect(broker.url("/api/v1/technician/ws")) as ws:
        assert (await ws.receive_json(timeout=10))["type"] == "session.update"

    # A file goes up (tus) and comes down with the bearer token and with the login cookie.
    files = f"/api/v1/sessions/{j.session_id}/files/"
    _, headers, _ = await broker.request("POST", files, status=201, headers={
        **TUS, **bearer, "Upload-Length": str(len(FILE_BODY)),
        "Upload-Metadata": metadata(filename="note.txt")})
    j.upload_path = URL(headers["Location"]).path
    await broker.request("PATCH", j.upload_path, status=204, data=FILE_BODY, headers={
        **TUS, **bearer, "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream"})
    for auth in (bearer, {}):
        _, _, body = await broker.request("GET", j.upload_path, status=200, headers=auth)
        assert body == FILE_BODY
    for kind in ("text", "html"):
        _, _, body = await broker.request(
            "GET", f"/api/v1/sessions/{j.session_id}/transcript?format={kind}", status=200)
        assert b"hello from the end user" in body
    await broker.request("POST", "/logout", status=303, data={"_csrf": login_csrf})
    return j


async def _start(broker: Broker, j: Journey, n: str) -> dict[str, Any]:
    """A session started with the API token."""
    _, _, body = await broker.request("POST", "/api/v1/sessions", status=201, headers={
        "Authorization": f"Bearer {j.api_token}"})
    started = _json(body)
    j.keep(f"key {n}", started["key"])
    j.keep(f"link {n}", started["join_url"].rsplit("/", 1)[1])
    return started


async def _say(broker: Broker, session_id: str, token: str, text: str) -> None:
    async with broker.http.ws_connect(
            broker.url(f"/api/v1/sessions/{session_id}/ws")) as ws:
        await ws.send_json({"type": "hello", "token": token, "after": 0})
        while (await ws.receive_json(timeout=10))["type"] != "synced":
            pass
        await ws.send_json({"type": "chat.send", "id": "c1", "text": text})
        while True:
            frame = await ws.receive_json(timeout=10)
            if frame["type"] == "chat.ack":
                return


def _json(body: bytes) -> dict[str, Any]:
    import json

    data = json.loads(body)
    assert isinstance(data, dict)
    return data


@contextlib.asynccontextmanager
async def running(app: web.Application, directory: Path, *, tls: bool = False,
                  **runner_kwargs: Any) -> AsyncIterator[Broker]:
    """`app` on a loopback port (over TLS spoken by aiohttp when `tls`; `runner_kwargs`
    for aiohttp's AppRunner, as `web.run_app` takes them), and a browser
    for it: a cookie jar that keeps cookies for an IP address, no certificate checks."""
    server = TestServer(app)
    await server.start_server(ssl=_tls_context(directory) if tls else None,
                              **runner_kwargs)
    try:
        async with ClientSession(connector=TCPConnector(ssl=False),
                                 cookie_jar=CookieJar(unsafe=True)) as http:
            yield Broker(http, server.make_url("/"))
    finally:
        await server.close()
