"""The chat the transfer benchmark keeps going beside its transfers, to see what they cost
the sessions' messages."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import _common as c
import aiohttp
from _servers import Server

CHAT_SESSIONS = 20            # sessions chatting during the measurements
CHAT_RATE = 80.0              # chat lines per second, in total (4 per session)


class Chat:
    """Chat in several sessions at once: each end user writes at a steady pace (the
    default per-participant allowance, 5 lines a second), and the time until the
    session's technician socket has the line is recorded."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.latencies: list[tuple[float, float]] = []  # (sent at, seconds)
        self.errors: list[str] = []
        self.users: list[aiohttp.ClientWebSocketResponse] = []
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self._readers: list[asyncio.Task[None]] = []
        self.closing = False
        self.number = 0

    async def open(self, http: aiohttp.ClientSession, server: Server,
                   sessions: list[tuple[str, str]]) -> None:
        for session_id, user_token in sessions:
            tech = await self._socket(http, server, session_id, server.token)
            user = await self._socket(http, server, session_id, user_token)
            self.users.append(user)
            self.sockets += [tech, user]
            self._readers += [asyncio.create_task(self._read_tech(tech)),
                              asyncio.create_task(self._read_user(user))]

    async def _socket(self, http: aiohttp.ClientSession, server: Server, session_id: str,
                      token: str) -> aiohttp.ClientWebSocketResponse:
        ws = await http.ws_connect(f"{server.base}/api/v1/sessions/{session_id}/ws")
        await ws.send_json({"type": "hello", "token": token, "after": 0})
        async with asyncio.timeout(30):
            while (await ws.receive_json())["type"] != "synced":
                pass
        return ws

    async def _read_tech(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            frame = json.loads(message.data)
            if frame["type"] == "event" and frame["event"]["type"] == "message":
                sent = self.sent.pop(frame["event"].get("client_id", ""), None)
                if sent is not None:
                    self.latencies.append((sent, time.perf_counter() - sent))
        if not self.closing:
            self.errors.append(f"technician socket closed: {ws.close_code}")

    async def _read_user(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            frame = json.loads(message.data)
            if frame["type"] == "error":
                self.errors.append(frame["code"])
        if not self.closing:
            self.errors.append(f"end user socket closed: {ws.close_code}")

    async def talk(self, stop: asyncio.Event) -> None:
        """Send round-robin at CHAT_RATE lines a second in total (open loop) until `stop`."""
        interval = 1 / CHAT_RATE
        next_at = time.perf_counter()
        while not stop.is_set():
            self.number += 1  # ids never repeat: a repeated id is a resend, stored once
            number = self.number
            client_id = f"b{number}"
            self.sent[client_id] = time.perf_counter()
            await self.users[number % len(self.users)].send_str(json.dumps(
                {"type": "chat.send", "id": client_id, "text": f"line {number}"}))
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    def window(self, start: float, end: float) -> dict[str, Any]:
        """Latency figures of the lines sent between `start` and `end`, and the five slowest
        as [seconds after `start`, ms], to tell when in a transfer the chat waited."""
        inside = [(at, lat) for at, lat in self.latencies if start <= at <= end]
        slowest = sorted(inside, key=lambda pair: pair[1])[-5:]
        return {**c.summarize_ms([lat for _, lat in inside]),
                "slowest": [[round(at - start, 3), round(lat * 1000, 2)] for at, lat in slowest]}

    async def close(self) -> None:
        self.closing = True
        for ws in self.sockets:
            await ws.close()
        for task in self._readers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
