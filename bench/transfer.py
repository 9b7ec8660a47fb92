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
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c
import _servers
import aiohttp
from _servers import Server
from _transfer_chat import CHAT_SESSIONS, Chat
from _transfer_children import BLOCK, MiB, client, expected_sha256, pattern, raw_server
from _transfer_summary import print_summary, summarize

RESULTS_DIR = c.ROOT / "bench" / "results"
SCRIPT = Path(__file__).resolve()


# -- the broker under test ---------------------------------------------------------------


def start_broker(root: Path, **extra_env: str) -> Server:
    """`supportbroker serve` with default transfer settings, a technician and its token."""
    return _servers.start_broker(root, "broker", **extra_env)


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
            _servers.SOURCE = root / "source"  # the broker processes import this tree
            code = c.export_commit(args.commit, _servers.SOURCE)
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
