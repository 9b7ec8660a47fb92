"""Session-history benchmark: GET /api/v1/sessions (search, filters, paging) on 100,000
stored sessions.

    .venv/bin/python bench/history.py [--sessions N] [--database-url postgresql://...]

Seeds a fresh database directly (the broker's own migrations, then bulk inserts of
technicians, sessions with chat lines, names, notes and transfers; the database's
triggers and indexes do their work as in production), starts ``supportbroker serve`` on
it, and measures each query over 127.0.0.1: a few warm-up calls, then `--runs` calls one
after another; the median and p90 are reported with the server's CPU time per call and
the CPU pressure during the runs. With ``--database-url`` (PostgreSQL) the data goes into
a new role and schema of that database, both dropped afterwards. The JSON goes to
bench/results/history-<timestamp>.json; docs/benchmarks.md explains the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import _common as c
import aiohttp

sys.path.insert(0, str(c.ROOT))  # the broker's schema and word splitting, for seeding

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from broker.datadir import secure_data_dir  # noqa: E402
from broker.db import create_engine, migrate
from broker.schema import (
    events,
    handoffs,
    session_technicians,
    session_texts,
    sessions,
    technicians,
)
from broker.sessions import search  # noqa: E402
from broker.sessions.search import words  # noqa: E402
from broker.settings import Settings  # noqa: E402

TECHNICIANS = 40
CHUNK = 2000
YEAR = 365 * 86400.0
FIRST = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannah", "Jonas", "Lena",
         "Maria", "Noah", "Olivia", "Paul", "Sophie", "Tim", "Jürgen", "Zoë", "Ali", "Chen"]
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
        "Smith", "Jones", "Brown", "Garcia", "Rossi", "Novak", "Kowalski", "Ivanova"]
TOPICS = [("printer", 0.10), ("vpn", 0.08), ("outlook", 0.08), ("password", 0.12),
          ("laptop", 0.10), ("monitor", 0.05), ("wlan", 0.07), ("teams", 0.06)]
FILLER = ("please can you check the the it does not work since this morning when I open "
          "error message again restart already tried thanks a lot screen shows nothing "
          "okay one moment let me look at your settings now it works great").split()


def _sentence(rng: random.Random, topic: str | None) -> str:
    picked = rng.choices(FILLER, k=rng.randint(5, 14))
    if topic is not None:
        picked.insert(rng.randrange(len(picked) + 1), topic)
    return " ".join(picked)


class Seeder:
    """Writes `count` sessions of one year, deterministic for a seed."""

    def __init__(self, engine: AsyncEngine, count: int, now: float) -> None:
        self.engine = engine
        self.count = count
        self.now = now
        self.rng = random.Random(20261206)
        self.stats = {"sessions": 0, "messages": 0, "handed_over": 0, "collaborations": 0,
                      "notes": 0}

    async def run(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(technicians.insert(), [
                {"id": n, "email": f"tech{n}@bench.example", "display_name": f"Tech {n}",
                 "password_hash": "unused", "is_admin": n == 1, "created_at": self.now - YEAR,
                 "must_change_password": False} for n in range(1, TECHNICIANS + 1)])
        for start in range(0, self.count, CHUNK):
            await self._chunk(start, min(self.count, start + CHUNK))
        async with self.engine.begin() as conn:  # SQLite: the chat lines' words, the index
            await search.catch_up(conn)

    async def _chunk(self, start: int, end: int) -> None:
        rng = self.rng
        rows, changes, helpers, transfers, messages, texts = [], [], [], [], [], []
        sqlite = self.engine.dialect.name == "sqlite"  # its catch-up reads the chat lines
        for number in range(start, end):
            sid = secrets.token_urlsafe(16)
            created = self.now - YEAR * (1 - number / self.count) + rng.random()
            owner = rng.randint(1, TECHNICIANS)
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            ended = number < self.count - 50
            notes = None
            if rng.random() < 0.3:
                notes = f"Ticket T{number:06d} {_sentence(rng, None)}"
                self.stats["notes"] += 1
            rows.append({"id": sid, "technician_id": owner, "state": "ended" if ended
                         else "active", "created_at": created, "started_at": created + 30,
                         "ended_at": created + 900 if ended else None,
                         "end_reason": "ended_by_technician" if ended else None,
                         "end_user_name": name, "notes": notes})
            texts.append({"session_id": sid, "kind": "name", "body": words(name)})
            if notes:
                texts.append({"session_id": sid, "kind": "notes", "body": words(notes)})
            topic = next((t for t, share in TOPICS if rng.random() < share), None)
            lines = [f"Hello, this is {name}. Case C{number:06d}.",
                     *(_sentence(rng, topic if rng.random() < 0.5 else None)
                       for _ in range(rng.randint(2, 9)))]
            for seq, line in enumerate(lines, start=1):
                messages.append({"session_id": sid, "seq": seq, "type": "message",
                                 "sender": "p1" if seq % 2 else f"t{owner}", "client_id": None,
                                 "created_at": created + 30 * seq, "body": json.dumps(
                                     {"author": None, "data": {"text": line}})})
                if not sqlite:
                    texts.append({"session_id": sid, "kind": "message", "body": words(line)})
            if rng.random() < 0.1:
                heir = rng.randint(1, TECHNICIANS)
                if heir != owner:
                    changes.append({"sid": sid, "heir": heir})
                    note = f"Escalated to tier 2: {_sentence(rng, topic)}"
                    transfers.append({
                        "id": secrets.token_urlsafe(12), "session_id": sid,
                        "from_technician_id": owner, "to_technician_id": heir, "note": note,
                        "keep_sender": False, "state": "accepted", "created_at": created + 300,
                        "decided_at": created + 330, "decided_by": heir})
                    texts.append({"session_id": sid, "kind": "handoff", "body": words(note)})
            if rng.random() < 0.05:
                helpers.append({"session_id": sid, "technician_id": rng.randint(1, TECHNICIANS),
                                "joined_at": created + 60, "left_at": created + 600})
            self.stats["messages"] += len(lines)
        async with self.engine.begin() as conn:
            await conn.execute(sessions.insert(), rows)
            await conn.execute(events.insert(), messages)
            await conn.execute(session_texts.insert(), texts)
            if transfers:
                await conn.execute(handoffs.insert(), transfers)
                await conn.execute(sessions.update().where(
                    sessions.c.id == sa.bindparam("sid")).values(
                    technician_id=sa.bindparam("heir")), changes)
            if helpers:
                await conn.execute(session_technicians.insert(), helpers)
        self.stats["sessions"] += len(rows)
        self.stats["handed_over"] += len(transfers)
        self.stats["collaborations"] += len(helpers)


@contextlib.asynccontextmanager
async def postgres_schema(base: str) -> AsyncIterator[str]:
    """A new role with a schema of its own in `base` (dropped afterwards); yields its URL."""
    name = "bench_" + secrets.token_hex(5)
    admin = create_async_engine(Settings(database_url=base).sqlalchemy_url, poolclass=NullPool)
    try:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f"CREATE ROLE {name} LOGIN"))
            await conn.execute(sa.text(f"CREATE SCHEMA {name} AUTHORIZATION {name}"))
        yield sa.engine.make_url(base).set(username=name, password=None).render_as_string(
            hide_password=False)
    finally:
        async with admin.begin() as conn:
            await conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :n"),
                {"n": name})
            await conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
            await conn.execute(sa.text(f"DROP ROLE IF EXISTS {name}"))
        await admin.dispose()


def _cli(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(  # noqa: S603 - fixed argv, our own venv's executable
        [str(c.SUPPORTBROKER), *argv], env=env, cwd=cwd, capture_output=True, timeout=120,
        check=False)
    if done.returncode != 0:
        raise RuntimeError(f"supportbroker {' '.join(argv)}: {done.stderr.decode()[-2000:]}")
    return done.stdout.decode().strip()


def _serve(env: dict[str, str], root: Path) -> subprocess.Popen[bytes]:
    with open(root / "broker.log", "wb") as log:
        return c.start_process([str(c.SUPPORTBROKER), "serve"], env=env, log=log, cwd=root)


def queries(rng: random.Random, count: int) -> list[tuple[str, str, str]]:
    """(name, who, query string): who is "admin" (every session) or "tech" (one of 40)."""
    case = rng.randrange(count)
    return [
        ("latest page, admin", "admin", ""),
        ("latest page, technician", "tech", ""),
        ("unique word (a case number), admin", "admin", f"q=c{case:06d}"),
        ("unique word, technician (not theirs)", "tech", f"q=c{case:06d}"),
        ("name, admin", "admin", "q=jürgen%20müller"),
        ("topic word (about 10 %), admin", "admin", "q=printer"),
        ("topic word, technician", "tech", "q=printer"),
        ("prefix of a topic word, admin", "admin", "q=print"),
        ("two topic words, admin", "admin", "q=printer%20error"),
        ("two words never together, admin", "admin", "q=vpn%20outlook"),
        ("name, technician", "tech", "q=jürgen%20müller"),
        ("word in every session, admin", "admin", "q=hello"),
        ("ended in one week, admin", "admin", "state=ended&from={week}&to={week_end}"),
        ("topic word in one month, admin", "admin", "q=vpn&from={month}&to={month_end}"),
    ]


async def measure(http: aiohttp.ClientSession, base: str, token: str, query: str,
                  pid: int, runs: int, warmup: int) -> dict[str, Any]:
    url = f"{base}/api/v1/sessions?{query}"
    headers = {"Authorization": f"Bearer {token}"}
    times: list[float] = []
    found = 0
    for number in range(warmup + runs):
        if number == warmup:
            cpu0, pressure0, wall0 = c.cpu_seconds(pid), c.cpu_pressure_us(), time.monotonic()
        started = time.perf_counter()
        async with http.get(url, headers=headers) as response:
            body = await response.json()
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status} {body}")
        if number >= warmup:
            times.append(time.perf_counter() - started)
        found = len(body["sessions"])
    wall = time.monotonic() - wall0
    summary = c.summarize_ms(times)
    return {**summary, "rows": found, "server_cpu_ms_per_call":
            (c.cpu_seconds(pid) - cpu0) / runs * 1000,
            "cpu_pressure": (c.cpu_pressure_us() - pressure0) / 1e6 / wall}


async def page_walk(http: aiohttp.ClientSession, base: str, token: str, pages: int
                    ) -> dict[str, Any]:
    """Following next_cursor through `pages` pages of everyone's history."""
    times: list[float] = []
    cursor = ""
    for _ in range(pages):
        started = time.perf_counter()
        async with http.get(f"{base}/api/v1/sessions?limit=50{cursor}",
                            headers={"Authorization": f"Bearer {token}"}) as response:
            body = await response.json()
        times.append(time.perf_counter() - started)
        if body["next_cursor"] is None:
            break
        cursor = f"&cursor={body['next_cursor']}"
    return c.summarize_ms(times)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-history-"))
    ok = False
    try:
        async with contextlib.AsyncExitStack() as stack:
            url = ""
            if args.database_url:
                url = await stack.enter_async_context(postgres_schema(args.database_url))
            result = await _run_on(args, root, url)
            ok = True
            return result
    finally:
        if ok:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"logs kept in {root}", file=sys.stderr)


async def _run_on(args: argparse.Namespace, root: Path, database_url: str) -> dict[str, Any]:
    started = time.perf_counter()
    settings = Settings(data_dir=root / "data", database_url=database_url)
    secure_data_dir(settings)  # private, as the broker wants it
    engine = create_engine(settings.sqlalchemy_url)
    now = time.time()
    seeder = Seeder(engine, args.sessions, now)
    try:
        await migrate(engine)
        await seeder.run()
        if engine.dialect.name == "postgresql":  # as autovacuum would have by now
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(sa.text("VACUUM ANALYZE"))
    finally:
        await engine.dispose()
    seeded = time.perf_counter() - started
    print(f"seeded {seeder.stats} in {seeded:.0f} s", flush=True)
    db_file = settings.data_dir / "broker.db"
    port = c.free_port()
    env = dict(os.environ, BROKER_DATA_DIR=str(settings.data_dir), BROKER_PORT=str(port),
               BROKER_HOST="127.0.0.1")
    if database_url:
        env["BROKER_DATABASE_URL"] = database_url
    tokens = {"admin": _cli(["token", "create", "--email", "tech1@bench.example"], env, root),
              "tech": _cli(["token", "create", "--email", "tech2@bench.example"], env, root)}
    proc = _serve(env, root)
    try:
        c.wait_listening(port, proc)
        base = f"http://127.0.0.1:{port}"
        rng = random.Random(7)
        week = time.strftime("%Y-%m-%d", time.gmtime(now - 200 * 86400))
        week_end = time.strftime("%Y-%m-%d", time.gmtime(now - 194 * 86400))
        month = time.strftime("%Y-%m-%d", time.gmtime(now - 120 * 86400))
        month_end = time.strftime("%Y-%m-%d", time.gmtime(now - 91 * 86400))
        figures = {}
        async with aiohttp.ClientSession() as http:
            for name, who, query in queries(rng, args.sessions):
                query = query.format(week=week, week_end=week_end, month=month,
                                     month_end=month_end)
                figure = await measure(http, base, tokens[who], query, proc.pid, args.runs,
                                       args.warmup)
                figures[name] = {"query": query, "who": who, **figure}
                print(f"{name:42s} median {figure['p50_ms']:7.1f} ms  p90 "
                      f"{figure['p90_ms']:7.1f} ms  server CPU "
                      f"{figure['server_cpu_ms_per_call']:6.1f} ms  rows {figure['rows']:3d}  "
                      f"CPU pressure {figure['cpu_pressure']:.0%}", flush=True)
            walk = await page_walk(http, base, tokens["admin"], args.pages)
            print(f"{'paging ' + str(walk['n']) + ' pages of 50, admin':42s} median "
                  f"{walk['p50_ms']:7.1f} ms  p90 {walk['p90_ms']:7.1f} ms", flush=True)
    finally:
        c.stop_process(proc)
    return {"database": "postgresql" if database_url else "sqlite",
            "seed": {**seeder.stats, "seconds": seeded,
                     "sqlite_bytes": db_file.stat().st_size if db_file.exists() else None},
            "queries": figures, "paging": walk,
            "elapsed_seconds": time.perf_counter() - started}


def main() -> int:
    parser = c.seeded_parser(__doc__, runs=15, warmup=3)
    parser.add_argument("--pages", type=int, default=40, help="pages followed by cursor")
    return c.run_seeded("history", parser, run)


if __name__ == "__main__":
    sys.exit(main())
