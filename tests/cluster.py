"""Broker nodes as real processes (``python -m broker serve``) sharing one PostgreSQL
database and one Redis, for the multi-node tests and bench/nodes.py.

PostgreSQL and Redis are those of the machine (CI starts both on their usual ports), or
BROKER_TEST_DATABASE_URL / BROKER_TEST_REDIS_URL. Each cluster gets a fresh schema of its
own (tests/conftest.py, `postgres_schema`). Without the services the tests skip with a
reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any, NoReturn
from urllib.parse import urlsplit

import aiohttp
import pytest

DEFAULT_DATABASE = "postgresql://127.0.0.1/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
TECH_PASSWORD = "long enough pw"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1",
                                       parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def services() -> tuple[str, str]:
    """The PostgreSQL and Redis URLs to use, or skip (fail under CI) when either is down."""
    database = os.environ.get("BROKER_TEST_DATABASE_URL") or DEFAULT_DATABASE
    redis = os.environ.get("BROKER_TEST_REDIS_URL") or DEFAULT_REDIS
    missing = [name for name, url, port in (("PostgreSQL", database, 5432),
                                            ("Redis", redis, 6379))
               if not _reachable(url, port)]
    if missing:
        skip_or_fail(f"several nodes need {' and '.join(missing)} (set "
                     "BROKER_TEST_DATABASE_URL and BROKER_TEST_REDIS_URL, or run them on "
                     "their usual ports)")
    return database, redis


def skip_or_fail(reason: str) -> NoReturn:
    """A service a test needs is missing: skip, or fail under CI=true (CI has it)."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


class RedisServer:
    """A private redis-server on a free port, which a test may stop and start again."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            skip_or_fail("redis-server is not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.workdir),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        async with asyncio.timeout(10):
            while not _reachable(self.url, self.port):
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.process = None


def _append(path: Path) -> IO[bytes]:
    return open(path, "ab")  # noqa: SIM115 - closed by the caller's with


@dataclasses.dataclass
class Node:
    """One broker process."""

    name: str
    port: int
    env: dict[str, str]
    log: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with _append(self.log) as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "broker", "serve", env=self.env,
                stdout=log, stderr=asyncio.subprocess.STDOUT)
        async with aiohttp.ClientSession() as http, asyncio.timeout(60):
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"node {self.name} exited:\n{self.log.read_text()[-3000:]}")
                try:
                    async with http.get(f"{self.base}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: nothing is written on the way down."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(15):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@dataclasses.dataclass
class Cluster:
    nodes: list[Node]
    env: dict[str, str]

    async def cli(self, *args: str, stdin: str = "") -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "broker", *args, env=self.env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
        assert process.returncode == 0, err.decode()
        return out.decode()

    async def technician(self, email: str, name: str) -> str:
        """A technician and an API token for them."""
        await self.cli("technician", "add", "--email", email, "--name", name,
                       stdin=TECH_PASSWORD + "\n")
        return (await self.cli("token", "create", "--email", email)).strip()


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, *, count: int = 2, redis_url: str | None = None,
                  **settings: Any) -> AsyncIterator[Cluster]:
    """`count` broker processes sharing a fresh PostgreSQL schema, Redis and data
    directory (the secrets and the files must be the same on every node)."""
    from .conftest import postgres_schema

    database, default_redis = services()
    async with postgres_schema(database) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
        env.update(BROKER_DATABASE_URL=url, BROKER_REDIS_URL=redis_url or default_redis,
                   BROKER_DATA_DIR=str(tmp_path / "shared-data"),
                   BROKER_NODE_HEARTBEAT_SECONDS="0.5", BROKER_NODE_TIMEOUT_SECONDS="2",
                   BROKER_SWEEP_INTERVAL_SECONDS="0.5", BROKER_CHAT_BURST="1000")
        env.update({f"BROKER_{k.upper()}": str(v) for k, v in settings.items()})
        nodes = []
        for index in range(1, count + 1):
            port = free_port()
            nodes.append(Node(f"node{index}", port, {
                **env, "BROKER_PORT": str(port), "BROKER_NODE_NAME": f"node{index}"},
                tmp_path / f"node{index}.log"))
        try:
            for node in nodes:
                await node.start()
            yield Cluster(nodes, env)
        finally:
            for node in nodes:
                await node.stop()
