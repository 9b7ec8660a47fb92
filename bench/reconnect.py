"""Reconnect benchmark: how fast a dropped participant is whole again.

1. Resync: an end user is away while the technician writes 1,000 messages; time from the
   end user's reconnect (TCP connect) until its view is complete (`synced`, all 1,000
   events received). Several rounds; median reported.
2. Reconnect storm: 1,000 sessions with their end users connected; the broker is
   restarted (graceful stop, start again); every end user reconnects at once with its
   last seq. Time from the new broker accepting connections until all 1,000 are back
   (`synced`). Several rounds; median reported.

Run: `.venv/bin/python bench/reconnect.py [--quick]`. Traffic goes only to 127.0.0.1;
every loop is bounded in count and time. Figures are printed and written as JSON to
bench/results/reconnect-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c
import aiohttp
from _servers import start_broker


class Broker:
    """A broker process (bench/_servers.py's start_broker) that can be stopped and started
    again on the same data directory and port."""

    def __init__(self, workdir: Path) -> None:
        self.server = start_broker(workdir, "broker", BROKER_CHAT_BURST="1000000",
                                   BROKER_CHAT_RATE_PER_SECOND="1000000")

    @property
    def base(self) -> str:
        return self.server.base

    @property
    def token(self) -> str:
        return self.server.token

    def start(self) -> float:
        """Start again; returns the monotonic time it accepted its first connection."""
        with open(self.server.log_path, "ab") as log:
            self.server.proc = c.start_process([str(c.SUPPORTBROKER), "serve"],
                                               env=self.server.env, log=log,
                                               cwd=self.server.workdir)
        c.wait_listening(self.server.port, self.server.proc)
        return time.monotonic()

    def stop(self) -> None:
        self.server.stop()


def _lanes(count: int) -> list[aiohttp.ClientSession]:
    """HTTP clients from different loopback addresses (the guessing limiter is per address)."""
    return [aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        limit=0, local_addr=(f"127.0.0.{2 + i}", 0))) for i in range(count)]


async def _session(http: aiohttp.ClientSession, broker: Broker) -> tuple[str, str]:
    auth = {"Authorization": f"Bearer {broker.token}"}
    async with http.post(f"{broker.base}/api/v1/sessions", headers=auth) as response:
        started = await response.json()
    async with http.post(f"{broker.base}/api/v1/join", json={"key": started["key"]}) as response:
        joined = await response.json()
    return started["session_id"], joined["participant_token"]


async def _sync(http: aiohttp.ClientSession, broker: Broker, session_id: str, token: str,
                after: int) -> tuple[aiohttp.ClientWebSocketResponse, int, int]:
    """Connect, hello with `after`, read until synced; returns (socket, events, last seq)."""
    ws = await http.ws_connect(f"{broker.base}/api/v1/sessions/{session_id}/ws")
    await ws.send_json({"type": "hello", "token": token, "after": after})
    events = 0
    async with asyncio.timeout(60):
        async for message in ws:
            frame = json.loads(message.data)
            if frame["type"] == "event":
                events += 1
            elif frame["type"] == "synced":
                return ws, events, int(frame["last_seq"])
    raise RuntimeError("socket closed before synced")


async def resync(broker: Broker, rounds: int, missed: int) -> dict[str, Any]:
    times, counts = [], []
    async with aiohttp.ClientSession() as http:
        session_id, token = await _session(http, broker)
        ws, _, last = await _sync(http, broker, session_id, token, 0)
        auth = {"Authorization": f"Bearer {broker.token}"}
        url = f"{broker.base}/api/v1/sessions/{session_id}/messages"
        sem = asyncio.Semaphore(16)

        async def post(i: int) -> None:
            async with sem, http.post(url, headers=auth, json={"text": f"m{i}"}) as r:
                assert r.status == 201, await r.text()

        for _ in range(rounds):
            await ws.close()
            await asyncio.gather(*(post(i) for i in range(missed)))
            started = time.perf_counter()
            ws, events, last = await _sync(http, broker, session_id, token, last)
            times.append(time.perf_counter() - started)
            counts.append(events)
        await ws.close()
    return {"missed": missed, "rounds": rounds, "events_received": counts,
            "seconds": times, "median_s": statistics.median(times)}


async def storm(broker: Broker, sessions: int, rounds: int) -> dict[str, Any]:
    lanes = _lanes(8)
    main = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        sem = asyncio.Semaphore(8)

        async def make(i: int) -> tuple[str, str]:
            async with sem:
                return await _session(lanes[i % len(lanes)], broker)

        pairs = await asyncio.gather(*(make(i) for i in range(sessions)))
        states = [await _sync(main, broker, sid, token, 0) for sid, token in pairs]
        sockets = [ws for ws, _, _ in states]
        last = [seq for _, _, seq in states]
        results = []
        for _ in range(rounds):
            broker.stop()  # graceful: every socket is closed with 1001 (going away)
            for ws in sockets:
                await ws.close()
            up = broker.start()

            async def back(i: int) -> tuple[aiohttp.ClientWebSocketResponse, float]:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        ws, _, seq = await _sync(main, broker, pairs[i][0], pairs[i][1], last[i])
                        last[i] = seq
                        return ws, time.monotonic()
                    except (aiohttp.ClientError, OSError, RuntimeError):
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.05)

            done = await asyncio.gather(*(back(i) for i in range(sessions)))
            sockets = [ws for ws, _ in done]
            finished = [t - up for _, t in done]
            results.append({"all_back_s": max(finished),
                            "p50_s": statistics.median(finished)})
        for ws in sockets:
            await ws.close()
        return {"sessions": sessions, "rounds": results,
                "median_all_back_s": statistics.median(r["all_back_s"] for r in results)}
    finally:
        for session in (main, *lanes):
            await session.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sb-bench-reconnect-") as tmp:
        broker = Broker(Path(tmp))
        try:
            first = await resync(broker, args.rounds, args.missed)
            print(f"resync after {args.missed} missed messages: median "
                  f"{first['median_s'] * 1000:.0f} ms over {args.rounds} rounds "
                  f"(each {', '.join(f'{s * 1000:.0f}' for s in first['seconds'])} ms)",
                  flush=True)
            second = await storm(broker, args.sessions, args.storm_rounds)
            rounds = ", ".join(f"{r['all_back_s']:.2f}" for r in second["rounds"])
            print(f"reconnect storm: {args.sessions} end users back after a restart in a "
                  f"median {second['median_all_back_s']:.2f} s (rounds: {rounds} s)", flush=True)
        finally:
            broker.stop()
    return {"resync": first, "storm": second}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--missed", type=int, default=1000)
    args = parser.parse_args()
    args.rounds = 3 if args.quick else 5
    args.sessions = 200 if args.quick else 1000
    args.storm_rounds = 1 if args.quick else 3
    c.raise_nofile()
    machine = c.machine_info()
    print(f"machine: {machine['nproc']} x {machine['cpu_model']}, Python {machine['python']}, "
          f"aiohttp {machine['aiohttp']}, load {machine['loadavg_at_start']}", flush=True)
    figures = asyncio.run(asyncio.wait_for(run(args), 900))
    out = c.ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"reconnect-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({"machine": machine, "git": c.git_state(), **figures}, indent=2))
    print(f"written: {path.relative_to(c.ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
