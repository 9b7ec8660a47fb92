"""Webhook benchmark: 1,000 sessions end within a minute; two endpoints get `session.ended`,
one answering at once, the other after 2 s. How long until the fast one has every event?

    python bench/webhooks.py [--quick] [--sessions N] [--spread SECONDS] [--database-url URL]

Starts the broker (``python -m broker serve`` from this tree, SQLite in a temporary data
directory unless --database-url names PostgreSQL) on a free 127.0.0.1 port, with
``webhook_allow_private_targets`` and ``webhook_http_hosts=127.0.0.1`` so that it may post
to the two receivers this process runs on 127.0.0.1 (aiohttp servers; the slow one sleeps
2 s before answering 200). An admin and its API token come from the CLI. The sessions are
started first (their `session.created` goes to nobody), then ended at an even pace over
``--spread`` seconds (default 30; the brief: within a minute). Reported: the time from the
first end until the fast endpoint had all events, and after the last end; each event's
delay from its end request's answer to its arrival (p50/p90/p99/max); how many the slow
endpoint had by then; the broker's CPU seconds and the machine's CPU pressure (Linux PSI)
over the window, so that noise from other processes shows. JSON goes to
bench/results/webhooks-<timestamp>.json; docs/benchmarks.md explains the figures. Only
127.0.0.1 is contacted, and everything is bounded by --time-limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c
import aiohttp
from aiohttp import web

RESULTS_DIR = c.ROOT / "bench" / "results"
ADMIN_EMAIL = "bench-admin@example.com"
PASSWORD = "bench-password-1"
SLOW_SECONDS = 2.0


class Receiver:
    """Counts each session.ended once, with when it first arrived."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.first: dict[str, float] = {}
        self.requests = 0
        self.changed = asyncio.Event()
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        self.port = c.free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return f"http://127.0.0.1:{self.port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        event = json.loads(await request.read())
        self.requests += 1
        if self.delay:
            await asyncio.sleep(self.delay)  # the help desk that takes its time
        self.first.setdefault(event["data"]["session_id"], time.monotonic())
        self.changed.set()
        return web.Response(text="ok")


def _cli(env: dict[str, str], *argv: str, stdin: str = "") -> str:
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "broker", *argv], input=stdin.encode(), env=env,
        capture_output=True, timeout=120, check=False)
    if done.returncode:
        raise RuntimeError(f"broker {' '.join(argv)} failed: {done.stderr.decode()[-2000:]}")
    return done.stdout.decode()


def start_broker(workdir: Path, database_url: str) -> tuple[subprocess.Popen[bytes], int, str,
                                                            Path]:
    port = c.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    env.update(PYTHONPATH=str(c.ROOT), BROKER_DATA_DIR=str(workdir / "data"),
               BROKER_PORT=str(port), BROKER_HOST="127.0.0.1", BROKER_DATABASE_URL=database_url,
               BROKER_WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
               BROKER_WEBHOOK_HTTP_HOSTS="127.0.0.1")
    log_path = workdir / "broker.log"
    with open(log_path, "wb") as log:
        proc = c.start_process([sys.executable, "-m", "broker", "serve"], env=env, log=log,
                               cwd=workdir)
    try:
        c.wait_listening(port, proc)
        _cli(env, "technician", "add", "--email", ADMIN_EMAIL, "--name", "Bench", "--admin",
             stdin=PASSWORD + "\n")
        token = _cli(env, "token", "create", "--email", ADMIN_EMAIL).split()[-1]
    except BaseException:
        c.stop_process(proc)
        raise
    return proc, port, token, log_path


async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    fast, slow = Receiver(0.0), Receiver(SLOW_SECONDS)
    fast_url, slow_url = await fast.start(), await slow.start()
    proc, port, token, log_path = start_broker(workdir, args.database_url)
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {token}"}
    limit = asyncio.Semaphore(16)
    try:
        async with aiohttp.ClientSession(headers=auth) as http:
            async def call(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
                async with limit, http.request(method, base + path, **kwargs) as response:
                    if response.status >= 300:
                        raise RuntimeError(f"{method} {path}: {await response.text()}")
                    return dict(await response.json())

            for url, name in ((fast_url, "fast"), (slow_url, "slow")):
                await call("POST", "/api/v1/webhooks", json={
                    "url": url, "events": ["session.ended"], "description": name})
            sessions = [s["session_id"] for s in await asyncio.gather(
                *(call("POST", "/api/v1/sessions") for _ in range(args.sessions)))]
            ended: dict[str, float] = {}
            cpu0, psi0, steal0 = c.cpu_seconds(proc.pid), c.cpu_pressure_us(), c.stolen_seconds()
            start = time.monotonic()

            async def end(index: int, session_id: str) -> None:
                await asyncio.sleep(start + index * args.spread / len(sessions) - time.monotonic())
                await call("POST", f"/api/v1/sessions/{session_id}/end")
                ended[session_id] = time.monotonic()

            await asyncio.gather(*(end(i, s) for i, s in enumerate(sessions)))
            last_end = time.monotonic()
            async with asyncio.timeout(args.time_limit):
                while len(fast.first) < len(sessions):
                    fast.changed.clear()
                    await fast.changed.wait()
            done = time.monotonic()
            wall = done - start
            cpu = c.cpu_seconds(proc.pid) - cpu0
            pressure = (c.cpu_pressure_us() - psi0) / 1e6 / wall
            steal = c.stolen_seconds() - steal0
    finally:
        c.stop_process(proc)
        await fast.stop()
        await slow.stop()
    delays = [fast.first[s] - ended[s] for s in sessions]
    return {
        "sessions": len(sessions), "spread_seconds": args.spread,
        "ends_took_seconds": last_end - start,
        "fast_all_after_first_end_seconds": done - start,
        "fast_all_after_last_end_seconds": done - last_end,
        "fast_delay": c.summarize_ms(delays),
        "fast_requests": fast.requests,
        "slow_events_by_then": len(slow.first), "slow_requests_by_then": slow.requests,
        "broker_cpu_seconds": cpu, "broker_cpu_share": cpu / wall,
        "cpu_pressure_some": pressure, "stolen_cpu_seconds": steal,
        "database": "postgresql" if args.database_url else "sqlite",
        "broker_log_tail": log_path.read_text(errors="replace").splitlines()[-5:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="200 sessions over 10 s")
    parser.add_argument("--sessions", type=int, default=0, help="default 1000 (200 quick)")
    parser.add_argument("--spread", type=float, default=0.0,
                        help="seconds over which the sessions end (default 30; 10 quick)")
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL URL (default: SQLite in a temporary directory)")
    parser.add_argument("--time-limit", type=float, default=300.0,
                        help="give up after this many seconds of waiting for the events")
    args = parser.parse_args()
    args.sessions = args.sessions or (200 if args.quick else 1000)
    args.spread = args.spread or (10.0 if args.quick else 30.0)
    limits = c.raise_nofile()
    machine = c.machine_info()
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as directory:
        result = asyncio.run(measure(args, Path(directory)))
    delay = result["fast_delay"]
    print(f"{result['sessions']} sessions ended over {result['ends_took_seconds']:.1f} s "
          f"({result['database']}):\n"
          f"  fast endpoint had all events {result['fast_all_after_first_end_seconds']:.1f} s "
          f"after the first end, {result['fast_all_after_last_end_seconds']:.2f} s after "
          f"the last\n"
          f"  delay end -> arrival: p50 {delay['p50_ms']:.0f} ms, p90 {delay['p90_ms']:.0f} "
          f"ms, p99 {delay['p99_ms']:.0f} ms, max {delay['max_ms']:.0f} ms\n"
          f"  slow endpoint (2 s per answer) had {result['slow_events_by_then']} by then\n"
          f"  broker CPU {result['broker_cpu_share']:.0%}, CPU pressure "
          f"{result['cpu_pressure_some']:.0%}, stolen {result['stolen_cpu_seconds']:.1f} s")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"webhooks-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({
        "command": " ".join([".venv/bin/python", "bench/webhooks.py", *sys.argv[1:]]),
        "machine": machine, "rlimit_nofile": limits, "git": c.git_state(), **result},
        indent=2))
    print(f"wrote {path.relative_to(c.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
