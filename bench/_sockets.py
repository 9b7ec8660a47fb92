"""Sessions with both sockets open, for the core benchmark's figures 2 and 3 (and
bench/screen.py): pairs of sockets made, connected and closed, and an open-loop chat load
whose round trips are timed from send until the technician's socket has the event.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import _common as c
import aiohttp
from _servers import MAX_LOOP, Clients, Server, create_and_join


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

