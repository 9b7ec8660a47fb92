"""The nodes benchmark's pieces: broker processes (Node) on a fresh PostgreSQL schema, their
CPU from /proc, and a Layout: sessions made at one node whose technicians' and end users'
sockets are open at the same or another node, chatting at a set rate.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import _common as c
import aiohttp
import sqlalchemy as sa
from _servers import TECH_EMAIL, TECH_PASSWORD
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

P99_LIMIT_MS = 50.0


class Node:
    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.port = c.free_port()
        self.env = {**env, "BROKER_PORT": str(self.port), "BROKER_HOST": "127.0.0.1",
                    "BROKER_NODE_NAME": name}
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, cwd: Path) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = c.start_process([str(c.SUPPORTBROKER), "serve"], env=self.env,
                                        log=log, cwd=cwd)
        c.wait_listening(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            c.stop_process(self.proc)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def _cli(env: dict[str, str], cwd: Path, *argv: str, stdin: bytes = b"") -> str:
    done = subprocess.run([str(c.SUPPORTBROKER), *argv], env=env, cwd=cwd, input=stdin,  # noqa: S603
                          capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"supportbroker {' '.join(argv)}: {done.stderr.decode()[-2000:]}")
    return done.stdout.decode()


def _token(env: dict[str, str], cwd: Path) -> str:
    _cli(env, cwd, "technician", "add", "--email", TECH_EMAIL, "--name", "Bench",
         stdin=f"{TECH_PASSWORD}\n".encode())
    out = _cli(env, cwd, "token", "create", "--email", TECH_EMAIL)
    return next(word for word in out.split() if word.startswith("sbt_"))


async def _schema(base: str) -> tuple[str, str]:
    """A fresh role and schema (its name) in PostgreSQL; returns (url, name)."""
    name = "bench_" + secrets.token_hex(5)
    url = make_url(base)
    admin = create_async_engine(url.set(drivername="postgresql+asyncpg"), poolclass=NullPool)
    async with admin.begin() as conn:
        await conn.execute(sa.text(f"CREATE ROLE {name} LOGIN"))
        await conn.execute(sa.text(f"CREATE SCHEMA {name} AUTHORIZATION {name}"))
    await admin.dispose()
    return url.set(username=name, password=None).render_as_string(hide_password=False), name


async def _drop_schema(base: str, name: str) -> None:
    admin = create_async_engine(make_url(base).set(drivername="postgresql+asyncpg"),
                                poolclass=NullPool)
    async with admin.begin() as conn:
        await conn.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :n"),
            {"n": name})
        await conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        await conn.execute(sa.text(f"DROP ROLE IF EXISTS {name}"))
    await admin.dispose()


def _pids_of(program: str) -> list[int]:
    """Processes of PostgreSQL or Redis on this machine (their CPU counts too)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm", encoding="ascii") as comm:
                    if comm.read().strip().startswith(program):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += c.cpu_seconds(pid)
        except (OSError, ValueError, IndexError):
            continue
    return total


class Pair:
    def __init__(self, session_id: str, token: str) -> None:
        self.session_id = session_id
        self.token = token
        self.tech: aiohttp.ClientWebSocketResponse | None = None
        self.user: aiohttp.ClientWebSocketResponse | None = None


async def _open(http: aiohttp.ClientSession, base: str, session_id: str,
                token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(f"{base}/api/v1/sessions/{session_id}/ws")
    await ws.send_str(json.dumps({"type": "hello", "token": token}))
    for _ in range(10_000):
        message = await ws.receive(timeout=30)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"socket closed before synced: {message.data}")
        if json.loads(message.data).get("type") == "synced":
            return ws
    raise RuntimeError("no synced frame")


class Layout:
    """Sessions made at `make`, technicians' sockets at `tech`, end users' at `user`."""

    def __init__(self, name: str, make: str, tech: str, user: str, token: str,
                 pids: list[int]) -> None:
        self.name, self.make, self.tech_base, self.user_base = name, make, tech, user
        self.token = token
        self.pids = pids
        self.pairs: list[Pair] = []
        self.pending: dict[str, float] = {}
        self.latencies: list[float] = []
        self.readers: list[asyncio.Task[None]] = []

    async def connect(self, http: aiohttp.ClientSession, sessions: int) -> None:
        auth = {"Authorization": f"Bearer {self.token}"}
        for _ in range(sessions):
            async with http.post(f"{self.make}/api/v1/sessions", headers=auth) as response:
                started = await response.json()
            async with http.post(f"{self.make}/api/v1/join",
                                 json={"key": started["key"]}) as response:
                joined = await response.json()
            pair = Pair(started["session_id"], joined["participant_token"])
            pair.tech = await _open(http, self.tech_base, pair.session_id, self.token)
            pair.user = await _open(http, self.user_base, pair.session_id, pair.token)
            self.pairs.append(pair)
            self.readers.append(asyncio.create_task(self._read(pair.tech)))
            self.readers.append(asyncio.create_task(self._drain(pair.user)))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        perf = time.perf_counter
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if data.get("type") == "event":
                sent = self.pending.pop(data["event"].get("client_id") or "", None)
                if sent is not None:
                    self.latencies.append(perf() - sent)

    async def _drain(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for _ in ws:
            pass

    async def run(self, rate: float, seconds: float, tag: str) -> dict[str, Any]:
        """Open loop at `rate` msg/s for `seconds`; then up to 3 s for stragglers."""
        self.pending.clear()
        self.latencies = []
        perf = time.perf_counter
        total = int(rate * seconds)
        users = [pair.user for pair in self.pairs]
        cpu0, others0 = _cpu(self.pids), _cpu(_pids_of("postgres") + _pids_of("redis-server"))
        t0 = perf() + 0.02
        sent = 0
        while sent < total and perf() < t0 + seconds * 3:
            due = min(total, int((perf() - t0) * rate) + 1)
            while sent < due:
                ws = users[sent % len(users)]
                assert ws is not None
                client_id = f"{tag}-{sent}"
                self.pending[client_id] = perf()
                await ws.send_str(f'{{"type":"chat.send","id":"{client_id}",'
                                  f'"text":"benchmark line {sent}"}}')
                sent += 1
            await asyncio.sleep(max(0.0, t0 + sent / rate - perf()))
        drain_end = perf() + 3
        for _ in range(1000):  # bounded; the deadline ends it first
            if not self.pending or perf() > drain_end:
                break
            await asyncio.sleep(0.02)
        wall = perf() - t0
        delivered = len(self.latencies)
        values = sorted(self.latencies)
        cpu = _cpu(self.pids) - cpu0
        others = _cpu(_pids_of("postgres") + _pids_of("redis-server")) - others0
        result = {"rate": rate, "sent": sent, "delivered": delivered,
                  "undelivered": sent - delivered, "wall_s": wall,
                  "broker_cpu_us_per_msg": cpu / max(delivered, 1) * 1e6,
                  "db_redis_cpu_us_per_msg": others / max(delivered, 1) * 1e6,
                  **c.summarize_ms(values)}
        result["passed"] = (sent - delivered == 0 and result["p99_ms"] <= P99_LIMIT_MS)
        return result

    async def close(self) -> None:
        for pair in self.pairs:
            for ws in (pair.tech, pair.user):
                if ws is not None:
                    await ws.close()
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
