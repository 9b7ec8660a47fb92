"""Helpers shared by the benchmarks: processes, ports, /proc readings and percentiles.

Everything here talks only to 127.0.0.1 and to processes this benchmark started itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
SUPPORTBROKER = VENV_BIN / "supportbroker"
PYTHON = VENV_BIN / "python"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile() -> tuple[int, int]:
    """Raise our soft RLIMIT_NOFILE to the hard limit; children started later inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:port (bounded in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def start_process(argv: Sequence[str], *, env: dict[str, str], log: IO[bytes],
                  cwd: Path) -> subprocess.Popen[bytes]:
    """Start a server process; it inherits our raised RLIMIT_NOFILE."""
    return subprocess.Popen(  # noqa: S603 - fixed argv, our own venv's executables
        list(argv), env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        cwd=cwd)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGINT (graceful shutdown in aiohttp's run_app), then SIGKILL; only this one pid."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def rss_kib(pid: int) -> int:
    """Resident set size in KiB, from /proc/<pid>/status (VmRSS)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_pressure_us() -> float:
    """Total microseconds in which some runnable task waited for a CPU (Linux PSI), or NaN.

    Over a window, delta / wall time is the share of time the machine was CPU-contended:
    the benchmark records it so that noise from other processes is visible in the results.
    """
    try:
        with open("/proc/pressure/cpu", encoding="ascii") as pressure:
            for line in pressure:
                if line.startswith("some"):
                    return float(line.rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        pass
    return float("nan")


def stolen_seconds() -> float:
    """CPU time the hypervisor gave to others while this virtual machine's CPUs wanted to
    run (all CPUs together, the "steal" of /proc/stat), or NaN where there is none."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            return int(stat.readline().split()[8]) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return float("nan")


def cpu_pressure_line() -> str:
    try:
        with open("/proc/pressure/cpu", encoding="ascii") as pressure:
            return pressure.readline().strip()
    except OSError:
        return "?"


def open_files_limit(pid: int) -> str:
    with open(f"/proc/{pid}/limits", encoding="ascii") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                return " ".join(line.split()[3:5])
    return "?"


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return float(sorted_values[rank - 1])


def summarize_ms(values_s: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean in milliseconds of durations given in seconds."""
    ordered = sorted(values_s)
    if not ordered:
        return {"n": 0, "p50_ms": float("nan"), "p90_ms": float("nan"),
                "p99_ms": float("nan"), "max_ms": float("nan"), "mean_ms": float("nan")}
    return {
        "n": len(ordered),
        "p50_ms": percentile(ordered, 50) * 1000,
        "p90_ms": percentile(ordered, 90) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "max_ms": ordered[-1] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if v == v]  # drop NaN
    return float(statistics.median(clean)) if clean else float("nan")


def git_state() -> dict[str, Any]:
    """The commit measured and whether the server's code differed from it."""
    def git(*args: str) -> str:
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv
                ["git", *args], cwd=ROOT, capture_output=True, timeout=10, check=False)  # noqa: S607
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.decode(errors="replace").rstrip()

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "broker", "web").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty_server_files": dirty}


def export_commit(rev: str, dest: Path) -> str:
    """Unpack the broker's code at `rev` (git archive, read-only for the repository) into
    `dest`, so a run measures one commit whatever the working tree holds; returns the full
    commit id. Servers started with PYTHONPATH=dest import broker/ and web/ from there."""
    resolved = subprocess.run(  # noqa: S603 - fixed argv
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT,  # noqa: S607
        capture_output=True, timeout=30, check=True).stdout.decode().strip()
    archive = subprocess.run(  # noqa: S603 - fixed argv
        ["git", "archive", "--format=tar", resolved], cwd=ROOT,  # noqa: S607
        capture_output=True, timeout=120, check=True).stdout
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return resolved


def machine_info() -> dict[str, Any]:
    import aiohttp

    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "mem_total_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "aiohttp": aiohttp.__version__,
        "loadavg_at_start": os.getloadavg(),
        "cpu_pressure_at_start": cpu_pressure_line(),
    }


def write_results(name: str, config: dict[str, Any], machine: dict[str, Any],
                  raw: dict[str, Any]) -> Path:
    """Write bench/results/<name>-<database>-<time>.json with the command, the config, the
    machine (as `machine_info` read it at the start) and the code beside `raw`; print and
    return its path."""
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{name}-{raw['database']}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({
        "command": " ".join([".venv/bin/python", f"bench/{name}.py", *sys.argv[1:]]),
        "config": config, "machine": machine, "code": git_state(), **raw}, indent=2))
    print(f"\nwrote {path.relative_to(ROOT)} ({raw['elapsed_seconds']:.0f} s)")
    return path


def seeded_parser(doc: str | None, *, runs: int, warmup: int) -> argparse.ArgumentParser:
    """The options of the benchmarks that seed a database with sessions and time queries
    on it (bench/history.py, bench/reports.py)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=runs, help="measured calls per query")
    parser.add_argument("--warmup", type=int, default=warmup, help="unmeasured calls first")
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL database to seed in a schema of its own "
                             "(default: SQLite in a temporary directory)")
    return parser


def run_seeded(name: str, parser: argparse.ArgumentParser,
               run: Callable[[argparse.Namespace], Awaitable[dict[str, Any]]]) -> int:
    """Parse and check the options, say which machine this is, run (an hour at most) and
    write the results file."""
    args = parser.parse_args()
    if not 100 <= args.sessions <= 1_000_000 or not 1 <= args.runs <= 1000:
        parser.error("--sessions 100 to 1,000,000 and --runs 1 to 1000")
    machine = machine_info()
    print(f"machine: {machine['nproc']} x {machine['cpu_model']}, load "
          f"{machine['loadavg_at_start']}", flush=True)
    raw = asyncio.run(asyncio.wait_for(run(args), 3600))
    write_results(name, vars(args), machine, raw)
    return 0
