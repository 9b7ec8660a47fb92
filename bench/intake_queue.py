"""Queue benchmark: 1,000 customers wait in one team's queue while technicians take 10
requests a second; how soon each waiting customer hears of their new place.

    .venv/bin/python bench/intake_queue.py [--quick]

(Not bench/queue.py: the bench scripts run with bench/ first on sys.path, and a queue.py
there would stand in for the standard library's `queue` module.)

Each round starts a broker (``supportbroker serve``, SQLite, as bench/core.py does), a
team with the bench technician in it and online (their dashboard socket open, as the
console keeps it), and then:

1. ``waiting`` customers send the pre-chat form (POST /api/v1/requests) and open their
   session sockets; each asks for its place (``queue.ask``) and keeps every
   ``queue.position`` frame it gets, with the time it arrived;
2. the technician takes the head of the queue ``rate`` times a second (POST
   /api/v1/handoffs/{id}/accept, open loop) for ``seconds``;
3. for each pick-up and each customer still behind it, the delay from the technician's
   click (the accept sent) to the first frame telling that customer a place at least as
   good as the pick-up made it, or their own ``handed_over`` (a frame may carry several
   pick-ups at once: the broker tells places at most every
   ``intake_queue_update_seconds``).

The broker's CPU time over the pick-up window (user + system, /proc) and the machine's CPU
pressure (PSI) are recorded. Rounds are repeated and medians reported; JSON goes to
bench/results/queue-<timestamp>.json. Only 127.0.0.1 is contacted; every loop is bounded
in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c
import aiohttp
from _servers import TECH_EMAIL, TECH_PASSWORD, Server, _run_cli, start_broker

TEAM = "Bench"
TARGET_P99_MS = 1000.0
ENV = {"BROKER_INTAKE_ADDRESS_BURST": "1000000", "BROKER_INTAKE_GLOBAL_PER_MINUTE": "1000000",
       "BROKER_INTAKE_MAX_WAITING": "100000", "BROKER_LOGIN_FAILURES_PER_MINUTE": "100"}


class Customer:
    """One waiting customer's socket and the places it was told, with their times."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session_id: str) -> None:
        self.ws = ws
        self.session_id = session_id
        self.times: list[float] = []
        self.places: list[int] = []
        self.first = 0  # the place queue.ask answered before the pick-ups
        self.placed = asyncio.Event()  # told a place at all
        self.served_at: float | None = None  # `handed_over`: a technician took it
        self.reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            frame = json.loads(message.data)
            if frame["type"] == "queue.position":
                self.times.append(time.perf_counter())
                self.places.append(int(frame["position"]))
                self.placed.set()
            elif frame["type"] == "event" and frame["event"]["type"] == "handed_over":
                self.served_at = time.perf_counter()

    def told(self, pick_ups: list[tuple[float, float]]
             ) -> tuple[list[float], list[float], int]:
        """For each pick-up done (the j-th to be answered; `pick_ups` holds when each was
        clicked, the accept sent, and answered) while this customer still waited: how
        long after the click, and after the answer, they were told a place it made
        (first - j or better), or were taken themselves (`handed_over`), whichever came
        first. Places only get better during the window, so the first such frame is the
        one; one that came before the answer counts as at once. Also how many never
        came."""
        from_click, from_answer, missing, index = [], [], 0, 0
        for done, (clicked, answered) in enumerate(pick_ups, start=1):
            if done >= self.first:
                break  # taken
            while index < len(self.places) and self.places[index] > self.first - done:
                index += 1
            told = [self.times[index]] if index < len(self.places) else []
            if self.served_at is not None:
                told.append(self.served_at)
            if told:
                from_click.append(min(told) - clicked)
                from_answer.append(max(0.0, min(told) - answered))
            else:
                missing += 1
        return from_click, from_answer, missing


async def online(server: Server, http: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
    """Log the technician in as a browser does and open the dashboard socket."""
    page = await (await http.get(f"{server.base}/login")).text()
    match = re.search(r'name="_csrf" value="([^"]+)"', page)
    if match is None:
        raise RuntimeError("no CSRF field on /login")
    async with http.post(f"{server.base}/login", allow_redirects=False, data={
            "email": TECH_EMAIL, "password": TECH_PASSWORD, "_csrf": match.group(1)}) as done:
        if done.status != 303:
            raise RuntimeError(f"login: HTTP {done.status}")
    return await http.ws_connect(f"{server.base}/api/v1/technician/ws")


async def drain(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for _ in ws:
        pass


async def customer(http: aiohttp.ClientSession, server: Server, n: int) -> Customer:
    async with http.post(f"{server.base}/api/v1/requests", json={
            "team": TEAM, "name": f"Customer {n}", "email": f"c{n}@example.com",
            "description": "The printer prints nothing."}) as response:
        answer = await response.json()
        if response.status != 201:
            raise RuntimeError(f"request: HTTP {response.status} {answer}")
    ws = await http.ws_connect(f"{server.base}/api/v1/sessions/{answer['session_id']}/ws")
    await ws.send_json({"type": "hello", "token": answer["participant_token"]})
    async with asyncio.timeout(30):
        async for message in ws:
            if json.loads(message.data)["type"] == "synced":
                break
    made = Customer(ws, answer["session_id"])
    made.reader = asyncio.create_task(made.read())
    return made


async def one_round(cfg: argparse.Namespace, root: Path, name: str) -> dict[str, Any]:
    server = start_broker(root, name, BROKER_INTAKE_QUEUE_UPDATE_SECONDS=str(cfg.interval),
                          **ENV)
    lanes = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        limit=0, local_addr=(f"127.0.0.{2 + i}", 0))) for i in range(8)]
    browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    customers: list[Customer] = []
    try:
        _run_cli(["team", "add", TEAM], server.env, server.workdir)
        _run_cli(["team", "member", "--team", TEAM, "--email", TECH_EMAIL], server.env,
                 server.workdir)
        dashboard = await online(server, browser)
        drainer = asyncio.create_task(drain(dashboard))
        gate = asyncio.Semaphore(16)

        async def make(n: int) -> Customer:
            async with gate:
                return await customer(lanes[n % len(lanes)], server, n)

        started = time.perf_counter()
        customers = list(await asyncio.gather(*(make(n) for n in range(cfg.waiting))))
        filled = time.perf_counter() - started
        auth = {"Authorization": f"Bearer {server.token}"}
        async with browser.get(f"{server.base}/api/v1/queues", headers=auth) as response:
            waiting = (await response.json())["queues"][0]["waiting"]
        by_session = {item["session_id"]: item["handoff_id"] for item in waiting}
        for one in customers:  # its place now, as the page asks once it is synced
            await one.ws.send_json({"type": "queue.ask"})
        async with asyncio.timeout(120):
            await asyncio.gather(*(one.placed.wait() for one in customers))
        for one in customers:
            one.first = one.places[-1]
        # The head of the queue first, as the customers were told their places.
        order = [by_session[one.session_id] for one in sorted(customers,
                                                               key=lambda one: one.first)]
        assert len(order) == len(by_session) == cfg.waiting
        picks = min(int(cfg.seconds * cfg.rate), cfg.waiting - 1)
        done: list[tuple[float, float]] = []  # (sent, answered) of each accept
        cpu_before, pressure_before = c.cpu_seconds(server.pid), c.cpu_pressure_us()
        window_start = time.perf_counter()

        async def accept(k: int) -> None:
            await asyncio.sleep(max(0.0, window_start + k / cfg.rate - time.perf_counter()))
            sent = time.perf_counter()
            async with browser.post(f"{server.base}/api/v1/handoffs/{order[k]}/accept",
                                    headers=auth) as answer:
                if answer.status != 200:
                    raise RuntimeError(f"accept: HTTP {answer.status} {await answer.text()}")
            done.append((sent, time.perf_counter()))

        await asyncio.gather(*(accept(k) for k in range(picks)))
        window = time.perf_counter() - window_start
        cpu = c.cpu_seconds(server.pid) - cpu_before
        pressure = (c.cpu_pressure_us() - pressure_before) / 1e6 / window
        await asyncio.sleep(cfg.settle)  # the last pick-ups' frames on their way
        delays: list[float] = []
        missing = 0
        # The j-th pick-up to be answered made everyone behind it move up j places.
        answered_order = sorted(done, key=lambda pair: pair[1])
        after_answer: list[float] = []
        for one in customers:
            some, others, never = one.told(answered_order)
            delays += some
            after_answer += others
            missing += never
        frames = sum(len(one.places) for one in customers) - len(customers)
        drainer.cancel()
        return {"waiting": cfg.waiting, "picks": picks, "fill_seconds": filled,
                "pick_window_seconds": window, "pairs": len(delays), "missing": missing,
                "delay": c.summarize_ms(delays),
                "delay_after_answer": c.summarize_ms(after_answer), "position_frames": frames,
                "accept": c.summarize_ms([answered - sent for sent, answered in done]),
                "broker_cpu_seconds": cpu, "broker_cpu_share": cpu / window,
                "cpu_pressure_share": pressure}
    finally:
        for one in customers:
            if one.reader is not None:
                one.reader.cancel()
            await one.ws.close()
        for session in (browser, *lanes):
            await session.close()
        server.stop()


async def run(cfg: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="sb-bench-queue-") as tmp:
        for number in range(cfg.rounds):
            result = await one_round(cfg, Path(tmp), f"round{number}")
            delay, after, accept = (result["delay"], result["delay_after_answer"],
                                    result["accept"])
            print(f"round {number + 1}: {result['waiting']} waiting, {result['picks']} "
                  f"pick-ups in {result['pick_window_seconds']:.1f} s; place told after the "
                  f"click p50 {delay['p50_ms']:.0f} ms, p99 {delay['p99_ms']:.0f} ms, max "
                  f"{delay['max_ms']:.0f} ms, after the accept's answer p50 "
                  f"{after['p50_ms']:.0f} ms, p99 {after['p99_ms']:.0f} ms (the accept "
                  f"itself p50 {accept['p50_ms']:.0f} ms, p99 {accept['p99_ms']:.0f} ms; "
                  f"{result['pairs']} customer/pick-up pairs, "
                  f"{result['missing']} never told); broker CPU "
                  f"{result['broker_cpu_share'] * 100:.0f} % of a core; CPU pressure "
                  f"{result['cpu_pressure_share'] * 100:.0f} %", flush=True)
            results.append(result)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--waiting", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="pick-ups a second")
    parser.add_argument("--interval", type=float, default=0.25,
                        help="intake_queue_update_seconds")
    cfg = parser.parse_args()
    cfg.rounds = 1 if cfg.quick else 3
    cfg.seconds = 10.0 if cfg.quick else 30.0
    cfg.settle = 3.0
    c.raise_nofile()
    machine = c.machine_info()
    print(f"machine: {machine['nproc']} x {machine['cpu_model']}, Python {machine['python']}, "
          f"aiohttp {machine['aiohttp']}, load {machine['loadavg_at_start']}", flush=True)
    rounds = asyncio.run(asyncio.wait_for(run(cfg), 1800))
    summary = {"delay_p50_ms": c.median([r["delay"]["p50_ms"] for r in rounds]),
               "delay_p99_ms": c.median([r["delay"]["p99_ms"] for r in rounds]),
               "delay_max_ms": c.median([r["delay"]["max_ms"] for r in rounds]),
               "after_answer_p99_ms": c.median([r["delay_after_answer"]["p99_ms"]
                                                for r in rounds]),
               "accept_p99_ms": c.median([r["accept"]["p99_ms"] for r in rounds]),
               "broker_cpu_share": c.median([r["broker_cpu_share"] for r in rounds]),
               "target_p99_ms": TARGET_P99_MS}
    print(f"medians: from the click p50 {summary['delay_p50_ms']:.0f} ms, p99 "
          f"{summary['delay_p99_ms']:.0f} ms (target {TARGET_P99_MS:.0f}); from the accept's "
          f"answer p99 {summary['after_answer_p99_ms']:.0f} ms; the accept itself p99 "
          f"{summary['accept_p99_ms']:.0f} ms; broker CPU "
          f"{summary['broker_cpu_share'] * 100:.0f} % of a core", flush=True)
    out = c.ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"queue-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({"machine": machine, "git": c.git_state(), "settings": {
        "waiting": cfg.waiting, "rate": cfg.rate, "seconds": cfg.seconds,
        "intake_queue_update_seconds": cfg.interval}, "rounds": rounds,
        "summary": summary}, indent=2))
    print(f"written: {path.relative_to(c.ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
