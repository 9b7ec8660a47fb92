"""The benchmarks' servers: the broker (`supportbroker serve` with a technician and an API
token made by the CLI) and the bare aiohttp baseline (bench/_baseline.py), each a subprocess
on a free 127.0.0.1 port; HTTP clients from their own loopback addresses; waiting for a
quiet machine; one session created and joined. Used by core.py and the other benchmarks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import _common as c
import aiohttp

BASELINE_SCRIPT = c.ROOT / "bench" / "_baseline.py"
TECH_EMAIL = "bench@example.com"
TECH_PASSWORD = "bench-password-1"
MAX_LOOP = 10_000_000  # every loop below is also bounded by a deadline

# With --commit: the exported tree whose broker/ and web/ the broker processes import.
SOURCE: Path | None = None


@dataclasses.dataclass
class Server:
    kind: str  # "broker" or "baseline"
    proc: subprocess.Popen[bytes]
    port: int
    token: str
    workdir: Path
    log_path: Path
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # to start it again

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        c.stop_process(self.proc)

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's output, without the access log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.splitlines() if "aiohttp.access" not in line]
        return "\n".join(kept[-lines:])


def _run_cli(argv: list[str], env: dict[str, str], cwd: Path, stdin: bytes = b"") -> str:
    done = subprocess.run(  # noqa: S603 - fixed argv, our own venv's executable
        [str(c.SUPPORTBROKER), *argv], input=stdin, env=env, cwd=cwd, capture_output=True,
        timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"supportbroker {' '.join(argv)} failed: "
                           f"{done.stderr.decode(errors='replace')[-2000:]}")
    return done.stdout.decode()


def start_broker(root: Path, name: str, **extra_env: str) -> Server:
    """`supportbroker serve` in `root/name` with a technician and its API token."""
    workdir = root / name
    workdir.mkdir()
    port = c.free_port()
    env = dict(os.environ, BROKER_DATA_DIR=str(workdir / "data"),
               BROKER_PORT=str(port), BROKER_HOST="127.0.0.1", **extra_env)
    if SOURCE is not None:  # the CLI too: it runs the migrations of the measured code
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE),
                                                          env.get("PYTHONPATH")]))
    log_path = workdir / "broker.log"
    with open(log_path, "wb") as log:
        proc = c.start_process([str(c.SUPPORTBROKER), "serve"], env=env, log=log, cwd=workdir)
    try:
        c.wait_listening(port, proc)
        _run_cli(["technician", "add", "--email", TECH_EMAIL, "--name", "Bench"], env, workdir,
                 stdin=f"{TECH_PASSWORD}\n".encode())
        out = _run_cli(["token", "create", "--email", TECH_EMAIL], env, workdir)
        tokens = [word for word in out.split() if word.startswith("sbt_")]
        if not tokens:
            raise RuntimeError(f"no API token in {out!r}")
    except BaseException:
        c.stop_process(proc)
        raise
    return Server("broker", proc, port, tokens[-1], workdir, log_path, env)


def start_baseline(root: Path, name: str) -> Server:
    workdir = root / name
    workdir.mkdir()
    port = c.free_port()
    token = "sbt_" + secrets.token_urlsafe(32)
    log_path = workdir / "baseline.log"
    env = dict(os.environ)
    with open(log_path, "wb") as log:
        proc = c.start_process([str(c.PYTHON), str(BASELINE_SCRIPT), "--port", str(port),
                                "--token", token], env=env, log=log, cwd=workdir)
    try:
        c.wait_listening(port, proc)
    except BaseException:
        c.stop_process(proc)
        raise
    return Server("baseline", proc, port, token, workdir, log_path)


def start_server(kind: str, root: Path, name: str) -> Server:
    return start_broker(root, name) if kind == "broker" else start_baseline(root, name)


class Clients:
    """HTTP clients: one per concurrent lane, each from its own loopback source address
    (127.0.0.2, 127.0.0.3, ...), as concurrent end users come from different addresses;
    the broker's guessing limiter counts attempts per client address. Sockets use `main`.
    """

    def __init__(self, lanes: int) -> None:
        timeout = aiohttp.ClientTimeout(total=15)
        self.main = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                          timeout=timeout)
        self._lanes = [aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, local_addr=(f"127.0.0.{2 + i % 250}", 0)),
            timeout=timeout) for i in range(lanes)]

    def lane(self, index: int) -> aiohttp.ClientSession:
        return self._lanes[index % len(self._lanes)]

    async def __aenter__(self) -> Clients:
        return self

    async def __aexit__(self, *_: object) -> None:
        for session in (self.main, *self._lanes):
            await session.close()


async def wait_quiet(limit: float, threshold: float = 0.2) -> dict[str, float]:
    """Wait at most `limit` seconds until, over one second, some task waited for a CPU less
    than `threshold` of the time (Linux PSI). Our own processes are idle meanwhile, so this
    measures everybody else. Returns how long it waited and the last sample."""
    if limit <= 0:
        return {}
    started = time.perf_counter()
    sample = float("nan")
    for _ in range(int(limit) + 1):
        before = c.cpu_pressure_us()
        await asyncio.sleep(1.0)
        sample = (c.cpu_pressure_us() - before) / 1e6
        if not sample >= threshold or time.perf_counter() - started >= limit:
            break
    return {"quiet_waited_seconds": time.perf_counter() - started,
            "pressure_before": sample}


async def create_and_join(http: aiohttp.ClientSession, server: Server,
                          ) -> tuple[float, float, float, dict[str, Any]]:
    """One session: (start, created, joined) perf_counter stamps and the join answer."""
    t0 = time.perf_counter()
    async with http.post(f"{server.base}/api/v1/sessions",
                         headers={"Authorization": f"Bearer {server.token}"}) as response:
        created = await response.json()
        if response.status != 201:
            raise RuntimeError(f"create: HTTP {response.status} {created}")
    t1 = time.perf_counter()
    async with http.post(f"{server.base}/api/v1/join", json={"key": created["key"]}) as response:
        joined = await response.json()
        if response.status != 200:
            raise RuntimeError(f"join: HTTP {response.status} {joined}")
    return t0, t1, time.perf_counter(), joined

