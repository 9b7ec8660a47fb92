"""Core-loop benchmark: key throughput, chat latency and memory per session, against a bare
aiohttp baseline measured in the same run.

    .venv/bin/python bench/core.py [--quick]

Starts the broker (``supportbroker serve``) and a bare aiohttp server (bench/_baseline.py)
as subprocesses on free 127.0.0.1 ports, creates a technician and an API token with the
CLI, and drives both from this process:

1. key create + redeem: POST /api/v1/sessions then POST /api/v1/join, fixed concurrency;
2. chat round trip: N sessions with both sockets open, end users send ``chat.send`` at a
   fixed total rate (open loop), time from send until the technician's socket gets the
   ``event`` frame with that client id;
3. memory per idle session: server VmRSS before and after opening N sessions with both
   sockets connected and idle, divided by N.

Each figure is repeated and the medians are reported; the JSON goes to
bench/results/core-<timestamp>.json. docs/benchmarks.md explains the figures.
``--commit REV`` measures the broker at a commit instead of the working tree;
``--quiet-wait S`` waits (at most S seconds) before each window for other processes to
leave the CPUs mostly idle. Only 127.0.0.1 is contacted (client source addresses 127.0.0.x).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as c
import aiohttp

RESULTS_DIR = c.ROOT / "bench" / "results"
BASELINE_SCRIPT = c.ROOT / "bench" / "_baseline.py"
TECH_EMAIL = "bench@example.com"
TECH_PASSWORD = "bench-password-1"
MAX_LOOP = 10_000_000  # every loop below is also bounded by a deadline

# With --commit: the exported tree whose broker/ and web/ the broker processes import.
SOURCE: Path | None = None

TARGET_HTTP_RATIO = 0.5
TARGET_CHAT_P99_MS = 10.0
TARGET_MEMORY_KIB = 45.0


@dataclasses.dataclass(frozen=True)
class Config:
    quick: bool
    http_repeats: int
    http_seconds: float
    http_warmup_seconds: float
    concurrency: int
    rounds: int
    sessions: int
    rate: float
    chat_seconds: float
    chat_warmup_seconds: float
    drain_seconds: float
    idle_seconds: float
    quiet_wait_seconds: float
    commit: str
    time_limit_seconds: float

    @classmethod
    def make(cls, args: argparse.Namespace) -> Config:
        quick = bool(args.quick)
        return cls(
            quick=quick,
            http_repeats=args.http_repeats or (3 if quick else 5),
            http_seconds=args.http_seconds or (1.5 if quick else 3.0),
            http_warmup_seconds=0.5 if quick else 1.0,
            concurrency=args.concurrency,
            rounds=args.rounds or (1 if quick else 3),
            sessions=args.sessions or (500 if quick else 1000),
            rate=args.rate,
            chat_seconds=args.chat_seconds or (5.0 if quick else 15.0),
            chat_warmup_seconds=0.5 if quick else 1.0,
            drain_seconds=5.0,
            idle_seconds=1.0 if quick else 2.0,
            quiet_wait_seconds=args.quiet_wait,
            commit=args.commit or "",
            time_limit_seconds=(150.0 if quick else 600.0) + 20 * args.quiet_wait,
        )


# -- the servers -------------------------------------------------------------------------


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


# -- figure 1: key create + redeem -------------------------------------------------------


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


async def http_window(clients: Clients, server: Server, seconds: float,
                      concurrency: int) -> dict[str, Any]:
    """Closed loop of `concurrency` workers doing create+join for `seconds`."""
    creates: list[float] = []
    joins: list[float] = []
    completed = [0]  # requests answered, inside the window or just after it
    errors: collections.Counter[str] = collections.Counter()
    start = time.perf_counter()
    end = start + seconds

    async def worker(lane: int) -> None:
        http = clients.lane(lane)
        for _ in range(MAX_LOOP):
            if time.perf_counter() >= end:
                return
            try:
                t0, t1, t2, _ = await create_and_join(http, server)
            except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
                errors[str(exc)[:80]] += 1
                await asyncio.sleep(0.01)
                continue
            completed[0] += 2
            if t1 <= end:
                creates.append(t1 - t0)
            if t2 <= end:
                joins.append(t2 - t1)

    cpu0, client0, psi0 = c.cpu_seconds(server.pid), time.process_time(), c.cpu_pressure_us()
    await asyncio.wait_for(asyncio.gather(*(worker(lane) for lane in range(concurrency))),
                           seconds + 30)
    wall = time.perf_counter() - start
    server_cpu_seconds = c.cpu_seconds(server.pid) - cpu0
    server_cpu = server_cpu_seconds / wall
    client_cpu = (time.process_time() - client0) / wall
    pressure = (c.cpu_pressure_us() - psi0) / 1e6 / wall
    return {
        "requests_per_s": (len(creates) + len(joins)) / seconds,
        "pairs_per_s": len(joins) / seconds,
        "create": c.summarize_ms(creates),
        "join": c.summarize_ms(joins),
        "all": c.summarize_ms(creates + joins),
        "errors": dict(errors),
        "server_cpu": server_cpu,
        "server_cpu_ms_per_request": server_cpu_seconds * 1000 / max(1, completed[0]),
        "client_cpu": client_cpu,
        "cpu_pressure_some": pressure,
    }


async def figure_http(cfg: Config, root: Path, log: Callable[[str], None]) -> dict[str, Any]:
    broker = start_broker(root, "http-broker")
    try:
        baseline = start_baseline(root, "http-baseline")
    except BaseException:
        broker.stop()
        raise
    runs: dict[str, list[dict[str, Any]]] = {"broker": [], "baseline": []}
    try:
        async with Clients(cfg.concurrency) as clients:
            for repeat in range(cfg.http_repeats):
                order = (broker, baseline) if repeat % 2 == 0 else (baseline, broker)
                for server in order:
                    quiet = await wait_quiet(cfg.quiet_wait_seconds)
                    await http_window(clients, server, cfg.http_warmup_seconds, cfg.concurrency)
                    run = await http_window(clients, server, cfg.http_seconds, cfg.concurrency)
                    run.update(quiet)
                    runs[server.kind].append(run)
                    log(f"  [{repeat + 1}/{cfg.http_repeats}] {server.kind:8s} "
                        f"{run['requests_per_s']:8.0f} req/s  "
                        f"create p50 {run['create']['p50_ms']:6.1f} p99 "
                        f"{run['create']['p99_ms']:6.1f} ms  join p50 "
                        f"{run['join']['p50_ms']:6.1f} p99 {run['join']['p99_ms']:6.1f} ms  "
                        f"server CPU {run['server_cpu']:4.0%} "
                        f"({run['server_cpu_ms_per_request']:.2f} ms/req) client CPU "
                        f"{run['client_cpu']:4.0%}  CPU pressure {run['cpu_pressure_some']:4.0%}  "
                        f"errors {sum(run['errors'].values())}")
        limits = c.open_files_limit(broker.pid)
    finally:
        broker.stop()
        baseline.stop()
    return {"runs": runs, "broker_open_files_limit": limits}


# -- figures 2 and 3: sessions with open sockets -----------------------------------------


@dataclasses.dataclass
class Recorder:
    """One chat run's bookkeeping; the socket readers write into the current one."""

    pending: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    from_send: list[float] = dataclasses.field(default_factory=list)
    from_schedule: list[float] = dataclasses.field(default_factory=list)
    by_second: list[list[float]] = dataclasses.field(default_factory=list)
    start: float = 0.0
    acks: int = 0
    user_events: int = 0
    errors: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


@dataclasses.dataclass
class Pair:
    session_id: str
    participant_token: str
    tech: aiohttp.ClientWebSocketResponse | None = None
    user: aiohttp.ClientWebSocketResponse | None = None


class Sockets:
    """All sockets of a round and their reader tasks."""

    def __init__(self) -> None:
        self.rec = Recorder()
        self.tasks: list[asyncio.Task[None]] = []
        self.closes: collections.Counter[str] = collections.Counter()
        self.expect_close = False

    async def read_tech(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        perf = time.perf_counter
        loads = json.loads
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = loads(message.data)
            kind = data.get("type")
            if kind == "event":
                client_id = data["event"].get("client_id")
                stamps = self.rec.pending.pop(client_id, None) if client_id else None
                if stamps is not None:
                    now = perf()
                    rec = self.rec
                    rec.from_schedule.append(now - stamps[0])
                    rec.from_send.append(now - stamps[1])
                    second = int(stamps[0] - rec.start)
                    if 0 <= second < len(rec.by_second):
                        rec.by_second[second].append(now - stamps[1])
            elif kind == "error":
                self.rec.errors[f"tech:{data.get('code')}"] += 1
        if not self.expect_close:
            self.closes[f"tech:{ws.close_code}"] += 1
            self.rec.errors[f"tech socket closed: {ws.close_code}"] += 1

    async def read_user(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            raw = message.data
            if raw.startswith('{"type":"chat.ack"'):
                self.rec.acks += 1
                continue
            data = json.loads(raw)
            kind = data.get("type")
            if kind == "chat.ack":
                self.rec.acks += 1
            elif kind == "event":
                self.rec.user_events += 1
            elif kind == "error":
                self.rec.errors[f"user:{data.get('code')}"] += 1
        if not self.expect_close:
            self.closes[f"user:{ws.close_code}"] += 1
            self.rec.errors[f"user socket closed: {ws.close_code}"] += 1

    def follow(self, pair: Pair) -> None:
        assert pair.tech is not None and pair.user is not None
        self.tasks.append(asyncio.create_task(self.read_tech(pair.tech)))
        self.tasks.append(asyncio.create_task(self.read_user(pair.user)))


async def open_socket(http: aiohttp.ClientSession, server: Server, session_id: str,
                      token: str) -> aiohttp.ClientWebSocketResponse:
    """Connect, say hello, and wait for ``synced`` (the end of the replay)."""
    ws = await http.ws_connect(f"{server.base}/api/v1/sessions/{session_id}/ws",
                               autoping=True, max_msg_size=1 << 20)
    await ws.send_str(json.dumps({"type": "hello", "token": token}))
    for _ in range(1000):
        message = await ws.receive(timeout=20)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"socket closed before synced: {message.type} {message.data}")
        data = json.loads(message.data)
        if data.get("type") == "synced":
            return ws
        if data.get("type") == "error":
            raise RuntimeError(f"hello refused: {data}")
    raise RuntimeError("no synced frame")


async def bounded_gather(count: int, limit: int,
                         make: Callable[[int, int], Any]) -> list[Any]:
    """Run make(index, lane) for index 0..count-1 on at most `limit` lanes; results in order."""
    results: list[Any] = [None] * count
    indexes = iter(range(count))

    async def run_lane(lane: int) -> None:
        for index in indexes:
            results[index] = await make(index, lane)

    await asyncio.gather(*(run_lane(lane) for lane in range(min(limit, count))))
    return results


async def make_pairs(clients: Clients, server: Server, count: int,
                     concurrency: int) -> list[Pair]:
    async def one(_: int, lane: int) -> Pair:
        *_, joined = await create_and_join(clients.lane(lane), server)
        return Pair(joined["session_id"], joined["participant_token"])

    return await bounded_gather(count, concurrency, one)


async def connect_pairs(http: aiohttp.ClientSession, server: Server, pairs: list[Pair],
                        sockets: Sockets, concurrency: int = 32) -> None:
    async def one(index: int, _: int) -> None:
        pair = pairs[index]
        pair.tech = await open_socket(http, server, pair.session_id, server.token)
        pair.user = await open_socket(http, server, pair.session_id, pair.participant_token)
        sockets.follow(pair)

    await bounded_gather(len(pairs), concurrency, one)


async def close_pairs(pairs: list[Pair], sockets: Sockets) -> None:
    sockets.expect_close = True

    async def one(index: int, _: int) -> None:
        for ws in (pairs[index].tech, pairs[index].user):
            if ws is not None and not ws.closed:
                await ws.close()

    try:
        await asyncio.wait_for(bounded_gather(len(pairs), 64, one), 30)
    except TimeoutError:
        pass
    for task in sockets.tasks:
        task.cancel()
    await asyncio.gather(*sockets.tasks, return_exceptions=True)
    sockets.tasks.clear()


async def settled_rss(pid: int, samples: int = 3, gap: float = 0.5) -> int:
    values = []
    for _ in range(samples):
        await asyncio.sleep(gap)
        values.append(c.rss_kib(pid))
    return int(c.median(values))


async def loop_lag(stop: asyncio.Event, out: list[float], step: float = 0.005) -> None:
    """How late this (the client's) event loop wakes up: is the load generator keeping up?"""
    for _ in range(MAX_LOOP):
        if stop.is_set():
            return
        before = time.perf_counter()
        await asyncio.sleep(step)
        out.append(time.perf_counter() - before - step)


async def chat_run(sockets: Sockets, pairs: list[Pair], server: Server, rate: float,
                   seconds: float, drain: float, tag: str) -> dict[str, Any]:
    """Open loop: message i is due at t0 + i/rate, sent by end user i mod N, whatever the
    answers do; latency ends when the technician's socket sees the event."""
    rec = Recorder()
    sockets.rec = rec
    total = int(rate * seconds)
    users = [pair.user for pair in pairs]
    perf = time.perf_counter
    lag: list[float] = []
    stop_lag = asyncio.Event()
    lag_task = asyncio.create_task(loop_lag(stop_lag, lag))
    cpu0, client0, psi0 = c.cpu_seconds(server.pid), time.process_time(), c.cpu_pressure_us()
    t0 = perf() + 0.02
    rec.start = t0
    rec.by_second = [[] for _ in range(int(seconds + 0.999))]
    sent = 0
    deadline = t0 + seconds * 3 + 10
    for _ in range(MAX_LOOP):
        now = perf()
        if now > deadline:
            break
        due = min(total, int((now - t0) * rate) + 1) if now >= t0 else 0
        while sent < due:
            ws = users[sent % len(users)]
            assert ws is not None
            client_id = f"{tag}-{sent}"
            sent += 1
            if ws.closed:
                rec.errors["send on a closed socket"] += 1
                continue
            rec.pending[client_id] = (t0 + (sent - 1) / rate, perf())
            try:
                await ws.send_str(
                    f'{{"type":"chat.send","id":"{client_id}","text":"benchmark line {sent}"}}')
            except (aiohttp.ClientError, ConnectionError) as exc:
                rec.pending.pop(client_id, None)
                rec.errors[f"send: {type(exc).__name__}"] += 1
        if sent >= total:
            break
        await asyncio.sleep(max(0.0, t0 + sent / rate - perf()))
    send_end = perf()
    drain_end = send_end + drain
    for _ in range(MAX_LOOP):
        if not rec.pending or perf() > drain_end:
            break
        await asyncio.sleep(0.02)
    wall = perf() - t0
    server_cpu_seconds = c.cpu_seconds(server.pid) - cpu0
    server_cpu = server_cpu_seconds / wall
    client_cpu = (time.process_time() - client0) / wall
    pressure = (c.cpu_pressure_us() - psi0) / 1e6 / wall
    stop_lag.set()
    await lag_task
    lag.sort()
    return {
        "messages": total,
        "sent": sent,
        "target_rate": rate,
        "achieved_send_rate": sent / max(1e-9, send_end - t0),
        "delivered": len(rec.from_send),
        # not seen by the technician's socket within `drain` seconds after the last send
        "undelivered": len(rec.pending),
        "acks": rec.acks,
        "user_events": rec.user_events,
        "errors": dict(rec.errors),
        "latency_from_send": c.summarize_ms(rec.from_send),
        "latency_from_schedule": c.summarize_ms(rec.from_schedule),
        "per_second_p99_ms": [round(c.percentile(sorted(bucket), 99) * 1000, 2)
                              for bucket in rec.by_second],
        "server_cpu": server_cpu,
        # per message the technician received (an overloaded broker finished fewer)
        "server_cpu_us_per_message": server_cpu_seconds * 1e6 / max(1, len(rec.from_send)),
        "client_cpu": client_cpu,
        "cpu_pressure_some": pressure,
        "client_loop_lag_p99_ms": c.percentile(lag, 99) * 1000,
        "client_loop_lag_max_ms": (lag[-1] if lag else float("nan")) * 1000,
    }


async def session_round(cfg: Config, server: Server, round_no: int,
                        log: Callable[[str], None]) -> dict[str, Any]:
    pid = server.pid
    sockets = Sockets()
    pairs: list[Pair] = []
    async with Clients(cfg.concurrency) as clients:
        http = clients.main
        # Warm up every code path once (imports, caches, first statements), then let go.
        warm = await make_pairs(clients, server, 4, 4)
        warm_sockets = Sockets()
        await connect_pairs(http, server, warm, warm_sockets, 4)
        await chat_run(warm_sockets, warm, server, 20, 0.5, 2.0, f"w{round_no}")
        await close_pairs(warm, warm_sockets)
        rss_before = await settled_rss(pid)

        started = time.perf_counter()
        pairs = await make_pairs(clients, server, cfg.sessions, cfg.concurrency)
        create_seconds = time.perf_counter() - started
        rss_sessions = await settled_rss(pid, samples=2, gap=0.25)
        started = time.perf_counter()
        try:
            await connect_pairs(http, server, pairs, sockets)
            connect_seconds = time.perf_counter() - started
            await asyncio.sleep(cfg.idle_seconds)
            rss_idle = await settled_rss(pid)
            memory = {
                "rss_before_kib": rss_before,
                "rss_after_sessions_kib": rss_sessions,
                "rss_after_sockets_kib": rss_idle,
                "per_session_kib": (rss_idle - rss_before) / cfg.sessions,
                "sockets_only_per_session_kib": (rss_idle - rss_sessions) / cfg.sessions,
                "create_join_seconds": create_seconds,
                "connect_seconds": connect_seconds,
            }
            log(f"  [{round_no + 1}/{cfg.rounds}] {server.kind:8s} memory: "
                f"{memory['per_session_kib']:6.1f} KiB/session "
                f"({rss_before / 1024:.1f} -> {rss_sessions / 1024:.1f} -> "
                f"{rss_idle / 1024:.1f} MiB; {cfg.sessions} sessions created+joined in "
                f"{create_seconds:.1f} s, {2 * cfg.sessions} sockets in {connect_seconds:.1f} s)")
            quiet = await wait_quiet(cfg.quiet_wait_seconds)
            await chat_run(sockets, pairs, server, cfg.rate, cfg.chat_warmup_seconds,
                           cfg.drain_seconds, f"r{round_no}w")
            await asyncio.sleep(1.0)
            chat = await chat_run(sockets, pairs, server, cfg.rate, cfg.chat_seconds,
                                  cfg.drain_seconds, f"r{round_no}")
            chat.update(quiet)
            chat["unexpected_closes"] = dict(sockets.closes)
            latency = chat["latency_from_send"]
            log(f"  [{round_no + 1}/{cfg.rounds}] {server.kind:8s} chat: "
                f"{chat['achieved_send_rate']:6.0f} msg/s sent, {chat['delivered']} delivered, "
                f"{chat['undelivered']} undelivered; p50 {latency['p50_ms']:.2f} "
                f"p99 {latency['p99_ms']:.2f} "
                f"max {latency['max_ms']:.1f} ms (from schedule p99 "
                f"{chat['latency_from_schedule']['p99_ms']:.2f}); server CPU "
                f"{chat['server_cpu']:.0%} ({chat['server_cpu_us_per_message']:.0f} us/msg), "
                f"client CPU {chat['client_cpu']:.0%}, CPU pressure "
                f"{chat['cpu_pressure_some']:.0%}, client lag "
                f"p99 {chat['client_loop_lag_p99_ms']:.1f} ms; errors {chat['errors']} "
                f"closes {chat['unexpected_closes']}")
        finally:
            await close_pairs(pairs, sockets)
    return {"memory": memory, "chat": chat}


async def figure_sessions(cfg: Config, root: Path,
                          log: Callable[[str], None]) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {"broker": [], "baseline": []}
    for round_no in range(cfg.rounds):
        order = ("broker", "baseline") if round_no % 2 == 0 else ("baseline", "broker")
        for kind in order:
            server = start_server(kind, root, f"round{round_no}-{kind}")
            try:
                runs[kind].append(await session_round(cfg, server, round_no, log))
            except BaseException:
                log(f"{kind} log tail:\n{server.log_tail()}")
                raise
            finally:
                server.stop()
    return runs


# -- summary -----------------------------------------------------------------------------


def summarize(cfg: Config, http: dict[str, Any], rounds: dict[str, Any]) -> dict[str, Any]:
    def med(runs: list[dict[str, Any]], *path: str) -> float:
        values = []
        for run in runs:
            value: Any = run
            for key in path:
                value = value[key]
            values.append(float(value))
        return c.median(values)

    out: dict[str, Any] = {}
    for kind in ("broker", "baseline"):
        h = http["runs"][kind]
        r = rounds[kind]
        out[kind] = {
            "http_requests_per_s": med(h, "requests_per_s"),
            "http_pairs_per_s": med(h, "pairs_per_s"),
            "http_create_p50_ms": med(h, "create", "p50_ms"),
            "http_create_p99_ms": med(h, "create", "p99_ms"),
            "http_join_p50_ms": med(h, "join", "p50_ms"),
            "http_join_p99_ms": med(h, "join", "p99_ms"),
            "http_all_p50_ms": med(h, "all", "p50_ms"),
            "http_all_p99_ms": med(h, "all", "p99_ms"),
            "http_server_cpu": med(h, "server_cpu"),
            "http_cpu_pressure": med(h, "cpu_pressure_some"),
            "http_server_cpu_ms_per_request": med(h, "server_cpu_ms_per_request"),
            "chat_achieved_rate": med(r, "chat", "achieved_send_rate"),
            "chat_p50_ms": med(r, "chat", "latency_from_send", "p50_ms"),
            "chat_p99_ms": med(r, "chat", "latency_from_send", "p99_ms"),
            "chat_max_ms": med(r, "chat", "latency_from_send", "max_ms"),
            "chat_sched_p99_ms": med(r, "chat", "latency_from_schedule", "p99_ms"),
            "chat_undelivered": med(r, "chat", "undelivered"),
            "chat_errors_total": float(sum(sum(run["chat"]["errors"].values()) for run in r)),
            "chat_server_cpu_us_per_message": med(r, "chat", "server_cpu_us_per_message"),
            "chat_server_cpu": med(r, "chat", "server_cpu"),
            "chat_client_cpu": med(r, "chat", "client_cpu"),
            "chat_client_lag_p99_ms": med(r, "chat", "client_loop_lag_p99_ms"),
            "chat_cpu_pressure": med(r, "chat", "cpu_pressure_some"),
            "memory_per_session_kib": med(r, "memory", "per_session_kib"),
            "memory_sockets_only_kib": med(r, "memory", "sockets_only_per_session_kib"),
            "memory_rss_before_mib": med(r, "memory", "rss_before_kib") / 1024,
            "setup_create_join_seconds": med(r, "memory", "create_join_seconds"),
            "setup_connect_seconds": med(r, "memory", "connect_seconds"),
        }
    b, base = out["broker"], out["baseline"]
    ratio = b["http_requests_per_s"] / base["http_requests_per_s"]
    out["targets"] = {
        "http_ratio": {"value": ratio, "target": f">= {TARGET_HTTP_RATIO}",
                       "met": ratio >= TARGET_HTTP_RATIO},
        "chat_p99_ms": {"value": b["chat_p99_ms"], "target": f"<= {TARGET_CHAT_P99_MS}",
                        "met": b["chat_p99_ms"] <= TARGET_CHAT_P99_MS
                        and b["chat_undelivered"] == 0 and b["chat_errors_total"] == 0},
        "memory_kib": {"value": b["memory_per_session_kib"], "target": f"<= {TARGET_MEMORY_KIB}",
                       "met": b["memory_per_session_kib"] <= TARGET_MEMORY_KIB},
    }
    return out


def print_table(cfg: Config, summary: dict[str, Any]) -> None:
    b, base, t = summary["broker"], summary["baseline"], summary["targets"]

    def row(name: str, key: str, fmt: str, lower_is_better: bool) -> None:
        x, y = b[key], base[key]
        ratio = x / y if y else float("nan")
        print(f"  {name:34s} {format(x, fmt):>10s} {format(y, fmt):>10s} {ratio:8.2f}x"
              f"{'  (lower is better)' if lower_is_better else ''}")

    print(f"\nMedians ({cfg.http_repeats} key runs, {cfg.rounds} session rounds)")
    print(f"  {'figure':34s} {'broker':>10s} {'baseline':>10s} {'ratio':>9s}")
    row("key create+join, req/s", "http_requests_per_s", ".0f", False)
    row("  create p50 ms", "http_create_p50_ms", ".2f", True)
    row("  create p99 ms", "http_create_p99_ms", ".2f", True)
    row("  join p50 ms", "http_join_p50_ms", ".2f", True)
    row("  join p99 ms", "http_join_p99_ms", ".2f", True)
    row("  server CPU ms per request", "http_server_cpu_ms_per_request", ".3f", True)
    row(f"chat achieved msg/s (of {cfg.rate:.0f})", "chat_achieved_rate", ".0f", False)
    row("  chat p50 ms", "chat_p50_ms", ".2f", True)
    row("  chat p99 ms", "chat_p99_ms", ".2f", True)
    row("  chat max ms", "chat_max_ms", ".1f", True)
    row("  chat p99 from schedule ms", "chat_sched_p99_ms", ".2f", True)
    row("  server CPU us per message", "chat_server_cpu_us_per_message", ".0f", True)
    row("  CPU pressure during chat", "chat_cpu_pressure", ".2f", True)
    row("memory per idle session KiB", "memory_per_session_kib", ".1f", True)
    row("  of which sockets KiB", "memory_sockets_only_kib", ".1f", True)
    print("\nTargets")
    for name, target in t.items():
        print(f"  {name:14s} {target['value']:9.2f} (target {target['target']}): "
              f"{'met' if target['met'] else 'MISSED'}")


async def run(cfg: Config) -> dict[str, Any]:
    global SOURCE
    root = Path(tempfile.mkdtemp(prefix="bench-core-"))
    started = time.perf_counter()
    source: dict[str, Any] = {"measured": "working tree", **c.git_state()}
    if cfg.commit:
        resolved = c.export_commit(cfg.commit, root / "source")
        SOURCE = root / "source"
        source = {"measured": "commit", "commit": resolved}

    def log(line: str) -> None:
        print(f"{time.perf_counter() - started:6.1f}s {line}", flush=True)

    print(f"code: {source}", flush=True)
    ok = False
    try:
        log(f"figure 1: key create+join, concurrency {cfg.concurrency}, "
            f"{cfg.http_repeats} x {cfg.http_seconds:g} s per server")
        http = await figure_http(cfg, root, log)
        log(f"figures 2+3: {cfg.sessions} sessions, chat at {cfg.rate:.0f} msg/s for "
            f"{cfg.chat_seconds:g} s, {cfg.rounds} round(s) per server")
        rounds = await figure_sessions(cfg, root, log)
        ok = True
    finally:
        if ok:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"logs kept in {root}", file=sys.stderr)
    return {"http": http, "rounds": rounds, "code": source,
            "elapsed_seconds": time.perf_counter() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs (about a minute)")
    parser.add_argument("--http-repeats", type=int, default=0)
    parser.add_argument("--http-seconds", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--sessions", type=int, default=0,
                        help="sessions for figures 2 and 3 (default 1000; 500 with --quick)")
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--chat-seconds", type=float, default=0.0)
    parser.add_argument("--commit", metavar="REV",
                        help="measure the broker at this commit (exported with git archive) "
                             "instead of the working tree")
    parser.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                        help="on a shared machine: before each measured window, wait up to "
                             "SECONDS until other processes leave the CPUs mostly idle")
    args = parser.parse_args()
    cfg = Config.make(args)
    if cfg.rate / cfg.sessions > 4.5:
        parser.error(f"{cfg.rate:g} msg/s over {cfg.sessions} sessions exceeds the broker's "
                     f"per-participant chat allowance (5 msg/s); use more sessions")
    limits = c.raise_nofile()
    machine = c.machine_info()
    print(f"machine: {machine['nproc']} x {machine['cpu_model']}, {machine['mem_total_gib']} GiB, "
          f"Python {machine['python']}, aiohttp {machine['aiohttp']}, "
          f"RLIMIT_NOFILE {limits[0]}, load {machine['loadavg_at_start']}", flush=True)
    raw = asyncio.run(asyncio.wait_for(run(cfg), cfg.time_limit_seconds))
    summary = summarize(cfg, raw["http"], raw["rounds"])
    print_table(cfg, summary)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"core-{stamp}.json"
    path.write_text(json.dumps({
        "command": " ".join([".venv/bin/python", "bench/core.py", *sys.argv[1:]]),
        "config": dataclasses.asdict(cfg), "machine": machine, "rlimit_nofile": limits,
        "summary": summary, **raw}, indent=2))
    print(f"\nwrote {path.relative_to(c.ROOT)} ({raw['elapsed_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
