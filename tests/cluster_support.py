"""Shared by the two-node tests (see tests/cluster.py for how the nodes are run): HTTP
calls, a session socket that syncs, a technician's dashboard and login on a node."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp

from .cluster import TECH_PASSWORD, Node


async def _post(http: aiohttp.ClientSession, url: str, token: str | None = None,
                **body: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(url, json=body, headers=headers) as response:
        return response.status, await response.json()


class Socket:
    """A session socket that keeps every frame it gets, by type."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: dict[int, dict[str, Any]] = {}
        self.frames: list[dict[str, Any]] = []
        self.reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, node: Node, session_id: str,
                   token: str) -> Socket:
        ws = await http.ws_connect(f"{node.base}/api/v1/sessions/{session_id}/ws")
        await ws.send_json({"type": "hello", "token": token, "after": 0})
        socket = cls(ws)
        socket.reader = asyncio.create_task(socket._read())
        await socket.wait(lambda f: f["type"] == "synced")
        return socket

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            frame = message.json()
            self.frames.append(frame)
            if frame["type"] == "event":
                seq = frame["event"]["seq"]
                assert seq not in self.events, f"event {seq} twice"
                assert not self.events or seq == max(self.events) + 1, (
                    f"event {seq} after {max(self.events)}: out of order or a gap")
                self.events[seq] = frame["event"]
        self.closed.set()

    async def wait(self, test: Any, seconds: float = 15) -> dict[str, Any]:
        async with asyncio.timeout(seconds):
            seen = 0
            while True:
                for frame in self.frames[seen:]:
                    if test(frame):
                        return frame
                seen = len(self.frames)
                await asyncio.sleep(0.01)

    async def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        frame = await self.wait(lambda f: f["type"] == "event" and f["event"]["type"] == kind
                                and all(f["event"].get(k) == v for k, v in fields.items()))
        return dict(frame["event"])

    async def presence(self, technician: bool, end_user: bool) -> None:
        await self.wait(lambda f: f == {"type": "presence", "technician": technician,
                                        "end_user": end_user})

    async def say(self, text: str, client_id: str) -> None:
        await self.ws.send_json({"type": "chat.send", "id": client_id, "text": text})

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            await self.reader


async def _start_and_join(http: aiohttp.ClientSession, at: Node, join_at: Node,
                          token: str, name: str = "Dana") -> tuple[str, str]:
    status, started = await _post(http, f"{at.base}/api/v1/sessions", token)
    assert status == 201, started
    status, joined = await _post(http, f"{join_at.base}/api/v1/join", key=started["key"],
                                 name=name)
    assert status == 200, joined
    return started["session_id"], joined["participant_token"]


async def _dashboard(node: Node, email: str) -> tuple[aiohttp.ClientSession,
                                                      aiohttp.ClientWebSocketResponse]:
    """A technician's browser: logged in through the form at `node`, dashboard socket open."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    status, _ = await _log_in(http, node, email, TECH_PASSWORD)
    assert status == 303
    ws = await http.ws_connect(f"{node.base}/api/v1/technician/ws",
                               headers={"Origin": node.base})
    return http, ws


async def _log_in(http: aiohttp.ClientSession, node: Node, email: str, password: str,
                  headers: dict[str, str] | None = None) -> tuple[int, str | None]:
    """The login form at `node`, filled in; the status and Retry-After."""
    async with http.get(f"{node.base}/login") as page:
        csrf = re.search(r'name="_csrf" value="([^"]+)"', await page.text())
    assert csrf
    async with http.post(f"{node.base}/login", data={
            "email": email, "password": password, "_csrf": csrf.group(1)},
            headers=headers, allow_redirects=False) as response:
        await response.read()
        return response.status, response.headers.get("Retry-After")


async def _next_of(ws: aiohttp.ClientWebSocketResponse, kind: str,
                   seconds: float = 15) -> dict[str, Any]:
    async with asyncio.timeout(seconds):
        while True:
            frame = dict(await ws.receive_json())
            if frame["type"] == kind:
                return frame


async def _get(http: aiohttp.ClientSession, url: str, token: str) -> tuple[int, Any]:
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json()


async def _csrf(http: aiohttp.ClientSession, node: Node) -> str:
    async with http.get(f"{node.base}/dashboard") as page:
        match = re.search(r'data-csrf="([^"]+)"', await page.text())
    assert match
    return match.group(1)
