"""File-transfer benchmark: a 1 GiB upload and download through the broker, next to raw
loopback and raw disk writes measured in the same run, with the broker's RSS and the chat
latency while the transfer runs.

    .venv/bin/python bench/transfer.py [--size-mib 1024] [--rounds 3] [--quick] [--commit REV]

1. raw disk: write the size in 1 MiB blocks to a file beside the broker's data, then fsync,
   and read it back from the disk (dropped from the page cache first);
2. raw loopback: send the size over one TCP connection on 127.0.0.1 to a process that only
   counts it (and the other way round);
3. broker upload: one tus PATCH with the whole file (after the POST that creates it) and a
   declared SHA-256, timed from the first byte sent to the 204; the broker hashes, encrypts
   (AES-256-GCM) and writes every byte and fsyncs at the end;
4. broker download: GET of the complete file, timed to the last byte (before the rounds,
   one 64 MiB upload and download warm the broker up: its first transfer starts the
   worker threads, whose memory is reported apart);
5. all along, in this process: the end users of 20 sessions (the file's among them) send
   chat lines over their sockets, 80 a second in total, and the time until the session's
   technician socket has each line is recorded; the broker's VmRSS is sampled every 20 ms,
   and the CPU time the host stole from this virtual machine is recorded per window.

The bulk clients (raw and HTTP) run in child processes with blocking sockets, so they
neither slow down nor disturb the chat measurement here; with two CPUs they still compete
with the broker, as a real client on the same host would. The JSON goes to
bench/results/transfer-<timestamp>.json; docs/benchmarks.md explains the figures.
``--commit REV`` measures the broker at a commit (exported with git archive) instead of
the working tree, so that two versions can be compared alternately in one session.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c
import aiohttp
import core
from core import Server

RESULTS_DIR = c.ROOT / "bench" / "results"
SCRIPT = Path(__file__).resolve()
MiB = 1024 * 1024
BLOCK = MiB
TARGET_UPLOAD_RATIO = 0.5     # of min(loopback, disk write + fsync)
TARGET_DOWNLOAD_RATIO = 0.5   # of loopback
TARGET_RSS_GROWTH_MIB = 4.0
TARGET_CHAT_P99_MS = 10.0
CHAT_SESSIONS = 20            # sessions chatting during the measurements
CHAT_RATE = 80.0              # chat lines per second, in total (4 per session)


def pattern() -> bytes:
    """1 MiB of fixed pseudo-random bytes; a file is this block repeated."""
    out = bytearray()
    seed = b"supportbroker transfer benchmark"
    while len(out) < BLOCK:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:BLOCK])


def expected_sha256(size: int) -> str:
    block = pattern()
    digest = hashlib.sha256()
    for _ in range(size // BLOCK):
        digest.update(block)
    digest.update(block[:size % BLOCK])
    return digest.hexdigest()


# -- the broker under test ---------------------------------------------------------------



def start_broker(root: Path, **extra_env: str) -> Server:
    """`supportbroker serve` with default transfer settings, a technician and its token."""
    return core.start_broker(root, "broker", **extra_env)


async def start_session(http: aiohttp.ClientSession, server: Server) -> tuple[str, str]:
    """A joined session: its id and the end user's participant token."""
    async with http.post(f"{server.base}/api/v1/sessions",
                         headers={"Authorization": f"Bearer {server.token}"}) as response:
        created = await response.json()
    async with http.post(f"{server.base}/api/v1/join", json={"key": created["key"]}) as response:
        joined = await response.json()
    return joined["session_id"], joined["participant_token"]


async def settled_rss(pid: int) -> int:
    """VmRSS once it stops moving (the smallest of three readings half a second apart)."""
    readings = []
    for _ in range(3):
        readings.append(c.rss_kib(pid))
        await asyncio.sleep(0.5)
    return min(readings)


# -- child processes: raw sink and blocking clients ---------------------------------------


def raw_server(port: int) -> None:
    """Serve one connection at a time: ``PUT n`` reads n bytes, ``GET n`` sends n bytes."""
    block = pattern()
    with socket.create_server(("127.0.0.1", port)) as server:
        while True:
            conn, _ = server.accept()
            with conn:
                line = b""
                while not line.endswith(b"\n"):
                    part = conn.recv(1)
                    if not part:
                        break
                    line += part
                if not line:
                    continue
                verb, count = line.decode().split()
                size = int(count)
                if verb == "PUT":
                    view = memoryview(bytearray(BLOCK))
                    left = size
                    while left:
                        got = conn.recv_into(view, min(BLOCK, left))
                        if not got:
                            break
                        left -= got
                    conn.sendall(b"OK\n")
                else:
                    left = size
                    while left:
                        chunk = block if left >= BLOCK else block[:left]
                        conn.sendall(chunk)
                        left -= len(chunk)


def _send_body(conn: socket.socket, size: int) -> None:
    block = pattern()
    left = size
    while left:
        chunk = block if left >= BLOCK else block[:left]
        conn.sendall(chunk)
        left -= len(chunk)


def _read_head(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        part = conn.recv(65536)
        if not part:
            raise RuntimeError(f"connection closed in the response head: {data!r}")
        data += part
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, rest


def client(args: argparse.Namespace) -> None:
    """One timed transfer; prints {"seconds", "bytes", ...} as JSON."""
    if args.nice:
        os.nice(args.nice)
    size = args.size
    with socket.create_connection(("127.0.0.1", args.port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if args.mode == "raw-put":
            start = time.perf_counter()
            conn.sendall(f"PUT {size}\n".encode())
            _send_body(conn, size)
            assert conn.recv(3) == b"OK\n"
            result: dict[str, Any] = {}
        elif args.mode == "raw-get":
            start = time.perf_counter()
            conn.sendall(f"GET {size}\n".encode())
            view = memoryview(bytearray(BLOCK))
            left = size
            while left:
                got = conn.recv_into(view, min(BLOCK, left))
                if not got:
                    raise RuntimeError("raw sender stopped early")
                left -= got
            result = {}
        elif args.mode == "patch":
            head = (f"PATCH {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {args.token}\r\nTus-Resumable: 1.0.0\r\n"
                    f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
                    f"Content-Length: {size}\r\n\r\n").encode()
            start = time.perf_counter()
            conn.sendall(head)
            _send_body(conn, size)
            status, headers, _ = _read_head(conn)
            result = {"status": status, "offset": headers.get("upload-offset")}
        else:  # get
            start = time.perf_counter()
            conn.sendall((f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          f"Authorization: Bearer {args.token}\r\n\r\n").encode())
            status, headers, rest = _read_head(conn)
            left = int(headers["content-length"]) - len(rest)
            view = memoryview(bytearray(BLOCK))
            while left:
                got = conn.recv_into(view, min(BLOCK, left))
                if not got:
                    raise RuntimeError("download stopped early")
                left -= got
            result = {"status": status, "repr_digest": headers.get("repr-digest")}
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "bytes": size, **result}))


# -- the parent: measurements ------------------------------------------------------------


def disk_write(directory: Path, size: int) -> dict[str, float]:
    """Write `size` bytes in 1 MiB blocks and fsync, as a file system's ceiling; then read
    them back from the disk (dropped from the page cache first), as a download of a file
    that is no longer cached must."""
    block = pattern()
    path = directory / "disk-probe.bin"
    start = time.perf_counter()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        left = size
        while left:
            left -= os.write(fd, block if left >= BLOCK else block[:left])
        written = time.perf_counter()
        os.fsync(fd)
        done = time.perf_counter()
        # Read it back from the disk, not the page cache, as a download of a file that
        # has left the cache since it was stored must (a fresh one is still cached).
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        read_start = time.perf_counter()
        position = 0
        while position < size:
            got = len(os.pread(fd, BLOCK, position))
            if not got:
                raise RuntimeError("the disk probe came back short")
            position += got
        read_done = time.perf_counter()
    finally:
        os.close(fd)
    path.unlink()
    return {"seconds": done - start, "write_seconds": written - start,
            "mb_per_s": size / (done - start) / 1e6,
            "read_mb_per_s": size / (read_done - read_start) / 1e6}


def start_raw_server(root: Path, port: int) -> Any:
    with open(root / "raw.log", "wb") as log:
        return c.start_process([str(c.PYTHON), str(SCRIPT), "raw-server", "--port", str(port)],
                               env=dict(os.environ), log=log, cwd=root)


async def run_client(mode: str, port: int, size: int, **extra: str) -> dict[str, Any]:
    argv = [str(c.PYTHON), str(SCRIPT), "client", "--mode", mode,
            "--port", str(port), "--size", str(size),
            "--nice", os.environ.get("SB_BENCH_CLIENT_NICE", "0")]
    for name, value in extra.items():
        argv += [f"--{name}", value]
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"client {mode} failed: {err.decode(errors='replace')[-2000:]}")
    result: dict[str, Any] = json.loads(out)
    result["mb_per_s"] = result["bytes"] / result["seconds"] / 1e6
    return result


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


async def sample_rss(pid: int, stop: asyncio.Event, out: list[int]) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError, RuntimeError):
            out.append(c.rss_kib(pid))
        await asyncio.sleep(0.02)


async def measured(chat: Chat, pid: int, work: Any) -> dict[str, Any]:
    """Run `work` while chatting and sampling the broker's RSS."""
    before = await settled_rss(pid)
    stop = asyncio.Event()
    samples: list[int] = []
    sampler = asyncio.create_task(sample_rss(pid, stop, samples))
    talker = asyncio.create_task(chat.talk(stop))
    start = time.perf_counter()
    cpu_before = c.cpu_seconds(pid)
    stolen_before = c.stolen_seconds()
    try:
        result: dict[str, Any] = await work
    finally:
        end = time.perf_counter()
        cpu = c.cpu_seconds(pid) - cpu_before
        stolen = c.stolen_seconds() - stolen_before
        await asyncio.sleep(0.2)  # let the last lines arrive
        stop.set()
        await talker
        await sampler
    result.update(chat=chat.window(start, end), rss_before_kib=before,
                  rss_peak_kib=max(samples, default=before),
                  rss_growth_mib=(max(samples, default=before) - before) / 1024,
                  server_cpu=cpu / (end - start), stolen_ms=stolen * 1000)
    return result


async def broker_round(http: aiohttp.ClientSession, server: Server, chat: Chat,
                       session_id: str, token: str, size: int, digest: str) -> dict[str, Any]:
    checksum = base64.b64encode(bytes.fromhex(digest)).decode()
    metadata = (f"filename {base64.b64encode(b'bench.bin').decode()},"
                f"checksum {base64.b64encode(f'sha256 {checksum}'.encode()).decode()}")
    async with http.post(f"{server.base}/api/v1/sessions/{session_id}/files/", headers={
            "Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0",
            "Upload-Length": str(size), "Upload-Metadata": metadata}) as response:
        if response.status != 201:
            raise RuntimeError(f"create: {response.status} {await response.text()}")
        path = response.headers["Location"]
    upload = await measured(chat, server.pid, run_client(
        "patch", server.port, size, path=path, token=token))
    if upload["status"] != 204 or int(upload["offset"]) != size:
        raise RuntimeError(f"upload failed: {upload}")
    download = await measured(chat, server.pid, run_client(
        "get", server.port, size, path=path, token=server.token))
    expected = "sha-256=:" + checksum + ":"
    if download["status"] != 200 or download["repr_digest"] != expected:
        raise RuntimeError(f"download failed: {download}")
    async with http.delete(f"{server.base}{path}", headers={
            "Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}) as response:
        if response.status != 204:
            raise RuntimeError(f"delete: {response.status}")
    return {"upload": upload, "download": download}


async def run(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    size = args.size_mib * MiB
    digest = expected_sha256(size)
    with tempfile.TemporaryDirectory(prefix="sb-transfer-bench-") as tmp:
        root = Path(tmp)
        code = "working tree"
        if args.commit:
            core.SOURCE = root / "source"  # the broker processes import this tree
            code = c.export_commit(args.commit, core.SOURCE)
            log(f"measuring commit {code}")
        raw_port = c.free_port()
        raw = start_raw_server(root, raw_port)
        extra = {}
        if args.rate_mb:
            extra["BROKER_TRANSFER_RATE_BYTES_PER_SECOND"] = str(int(args.rate_mb * 1e6))
        try:
            server = start_broker(root, **extra)
        except BaseException:
            c.stop_process(raw)  # only the process this run started
            raise
        rounds: list[dict[str, Any]] = []
        try:
            c.wait_listening(raw_port, raw)
            async with aiohttp.ClientSession() as http:
                sessions = [await start_session(http, server) for _ in range(CHAT_SESSIONS)]
                session_id, token = sessions[0]  # the files go through the first one
                chat = Chat()
                await chat.open(http, server, sessions)
                idle = await measured(chat, server.pid, asyncio.sleep(args.idle_seconds,
                                                                      result={}))
                log(f"idle: chat p50 {idle['chat']['p50_ms']:.2f} p99 "
                    f"{idle['chat']['p99_ms']:.2f} ms over {idle['chat']['n']} lines")
                # The broker's first transfer also starts its worker threads (and their
                # malloc arenas): measured, but apart from the rounds.
                warm_size = 64 * MiB
                warmup = await broker_round(http, server, chat, session_id, token, warm_size,
                                            expected_sha256(warm_size))
                log(f"warm-up (64 MiB): RSS +{warmup['upload']['rss_growth_mib']:.1f} / +"
                    f"{warmup['download']['rss_growth_mib']:.1f} MiB")
                for number in range(args.rounds):
                    disk = disk_write(root / "broker" / "data", size)
                    put = await run_client("raw-put", raw_port, size)
                    get = await run_client("raw-get", raw_port, size)
                    pressure = c.cpu_pressure_us()
                    started = time.perf_counter()
                    through = await broker_round(http, server, chat, session_id, token, size,
                                                 digest)
                    pressure = (c.cpu_pressure_us() - pressure) / 1e6 / (
                        time.perf_counter() - started)
                    one = {"disk": disk, "loopback_put": put, "loopback_get": get, **through,
                           "cpu_pressure_some": pressure}
                    rounds.append(one)
                    log(f"[{number + 1}/{args.rounds}] disk+fsync {disk['mb_per_s']:7.0f} MB/s  "
                        f"read {disk['read_mb_per_s']:5.0f} MB/s  "
                        f"loopback {put['mb_per_s']:7.0f} / {get['mb_per_s']:7.0f} MB/s  "
                        f"upload {through['upload']['mb_per_s']:6.0f} MB/s  download "
                        f"{through['download']['mb_per_s']:6.0f} MB/s  RSS +"
                        f"{through['upload']['rss_growth_mib']:.1f} / +"
                        f"{through['download']['rss_growth_mib']:.1f} MiB  chat p99 "
                        f"{through['upload']['chat']['p99_ms']:.2f} / "
                        f"{through['download']['chat']['p99_ms']:.2f} ms  CPU pressure "
                        f"{pressure:.0%}  stolen {through['upload']['stolen_ms']:.0f} / "
                        f"{through['download']['stolen_ms']:.0f} ms")
                await chat.close()
                if chat.errors:
                    log(f"chat errors: {sorted(set(chat.errors))}")
        finally:
            server.stop()
            c.stop_process(raw)
        return {"measured": code, "size": size, "sha256": digest, "idle": idle,
                "warmup": warmup, "rounds": rounds, "chat_errors": chat.errors,
                "rate_cap_mb_per_s": args.rate_mb}


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    rounds = raw["rounds"]

    def med(path: tuple[str, ...]) -> float:
        values = []
        for one in rounds:
            value: Any = one
            for key in path:
                value = value[key]
            values.append(float(value))
        return c.median(values)

    loopback = min(med(("loopback_put", "mb_per_s")), med(("loopback_get", "mb_per_s")))
    disk = med(("disk", "mb_per_s"))
    disk_read = med(("disk", "read_mb_per_s"))
    upload = med(("upload", "mb_per_s"))
    download = med(("download", "mb_per_s"))
    worst_p99 = max(max(one["upload"]["chat"]["p99_ms"], one["download"]["chat"]["p99_ms"])
                    for one in rounds)
    worst_rss = max(max(one["upload"]["rss_growth_mib"], one["download"]["rss_growth_mib"])
                    for one in rounds)
    summary = {
        "disk_write_fsync_mb_per_s": disk,
        "disk_read_cold_mb_per_s": disk_read,
        "loopback_mb_per_s": loopback,
        "upload_mb_per_s": upload,
        "download_mb_per_s": download,
        "upload_ratio": upload / min(loopback, disk),
        "download_ratio": download / loopback,
        "download_ratio_of_disk_read": download / min(loopback, disk_read),
        "rss_growth_mib_worst": worst_rss,
        "rss_warmup_growth_mib": raw["warmup"]["upload"]["rss_growth_mib"]
        + raw["warmup"]["download"]["rss_growth_mib"],
        "rss_peak_mib": max(max(one["upload"]["rss_peak_kib"], one["download"]["rss_peak_kib"])
                            for one in rounds) / 1024,
        "chat_idle_p99_ms": raw["idle"]["chat"]["p99_ms"],
        "chat_p99_ms_worst": worst_p99,
        "chat_p99_upload_ms_median": med(("upload", "chat", "p99_ms")),
        "chat_p99_download_ms_median": med(("download", "chat", "p99_ms")),
    }
    summary["targets"] = {
        "upload_ratio": [TARGET_UPLOAD_RATIO, summary["upload_ratio"] >= TARGET_UPLOAD_RATIO],
        "download_ratio": [TARGET_DOWNLOAD_RATIO,
                           summary["download_ratio"] >= TARGET_DOWNLOAD_RATIO],
        "rss_growth_mib": [TARGET_RSS_GROWTH_MIB, worst_rss <= TARGET_RSS_GROWTH_MIB],
        "chat_p99_ms": [TARGET_CHAT_P99_MS, worst_p99 <= TARGET_CHAT_P99_MS],
    }
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    rows = [
        ("raw disk write + fsync", f"{summary['disk_write_fsync_mb_per_s']:.0f} MB/s", ""),
        ("raw disk read (not cached)", f"{summary['disk_read_cold_mb_per_s']:.0f} MB/s", ""),
        ("raw loopback (slower way)", f"{summary['loopback_mb_per_s']:.0f} MB/s", ""),
        ("broker upload", f"{summary['upload_mb_per_s']:.0f} MB/s",
         f"{summary['upload_ratio']:.2f}x of min(loopback, disk)"),
        ("broker download", f"{summary['download_mb_per_s']:.0f} MB/s",
         f"{summary['download_ratio']:.2f}x of loopback, "
         f"{summary['download_ratio_of_disk_read']:.2f}x of min(loopback, disk read)"),
        ("broker RSS growth (worst)", f"{summary['rss_growth_mib_worst']:.1f} MiB",
         f"peak {summary['rss_peak_mib']:.0f} MiB; the first transfer (warm-up) "
         f"+{summary['rss_warmup_growth_mib']:.1f} MiB"),
        ("chat p99 idle", f"{summary['chat_idle_p99_ms']:.2f} ms", ""),
        ("chat p99 during transfers (worst)", f"{summary['chat_p99_ms_worst']:.2f} ms",
         f"median up {summary['chat_p99_upload_ms_median']:.2f} / down "
         f"{summary['chat_p99_download_ms_median']:.2f} ms"),
    ]
    print()
    for name, value, note in rows:
        print(f"{name:36s} {value:>12s}  {note}")
    print()
    for name, (target, met) in summary["targets"].items():
        print(f"target {name:16s} {target:>8}  {'met' if met else 'MISSED'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    raw_parser = sub.add_parser("raw-server")
    raw_parser.add_argument("--port", type=int, required=True)
    client_parser = sub.add_parser("client")
    client_parser.add_argument("--mode", choices=["raw-put", "raw-get", "patch", "get"])
    client_parser.add_argument("--port", type=int, required=True)
    client_parser.add_argument("--size", type=int, required=True)
    client_parser.add_argument("--path", default="")
    client_parser.add_argument("--token", default="")
    client_parser.add_argument("--nice", type=int, default=0)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--rate-mb", type=float, default=0.0,
                        help="run the broker with transfer_rate_bytes_per_second at this many "
                             "MB/s (default: no cap)")
    parser.add_argument("--commit", metavar="REV",
                        help="measure the broker at this commit (exported with git archive) "
                             "instead of the working tree")
    parser.add_argument("--quick", action="store_true",
                        help="256 MiB, one round, 2 s idle: a smoke run, not for the record")
    args = parser.parse_args()
    if args.command == "raw-server":
        raw_server(args.port)
        return 0
    if args.command == "client":
        client(args)
        return 0
    if args.quick:
        args.size_mib, args.rounds, args.idle_seconds = 256, 1, 2.0
    machine = c.machine_info()
    git = c.git_state()
    if args.commit:
        git = {"commit": args.commit, "dirty_server_files": []}  # not the working tree
    print(f"machine: {machine['nproc']} x {machine['cpu_model']}, {machine['mem_total_gib']} GiB, "
          f"Python {machine['python']}, aiohttp {machine['aiohttp']}, "
          f"load {machine['loadavg_at_start']}", flush=True)
    dirty = " ".join(git["dirty_server_files"])
    print(f"code: commit {git['commit']}"
          f"{', uncommitted changes in ' + dirty if dirty else ''}", flush=True)
    started = time.monotonic()
    raw = asyncio.run(run(args, lambda line: print(line, flush=True)))
    summary = summarize(raw)
    print_summary(summary)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"transfer-{stamp}.json"
    path.write_text(json.dumps({
        "command": " ".join([".venv/bin/python", "bench/transfer.py", *sys.argv[1:]]),
        "machine": machine, "git": git, "summary": summary,
        "elapsed_seconds": time.monotonic() - started, **raw}, indent=2))
    print(f"\nwrote {path.relative_to(c.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
