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
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as c
import _servers
import aiohttp
from _core_summary import print_table, summarize
from _servers import (
    MAX_LOOP,
    Clients,
    Server,
    create_and_join,
    start_baseline,
    start_broker,
    start_server,
    wait_quiet,
)
from _sockets import (
    Pair,
    Sockets,
    chat_run,
    close_pairs,
    connect_pairs,
    make_pairs,
    settled_rss,
)

RESULTS_DIR = c.ROOT / "bench" / "results"


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


# -- figure 1: key create + redeem -------------------------------------------------------


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

async def run(cfg: Config) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-core-"))
    started = time.perf_counter()
    source: dict[str, Any] = {"measured": "working tree", **c.git_state()}
    if cfg.commit:
        resolved = c.export_commit(cfg.commit, root / "source")
        _servers.SOURCE = root / "source"
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
