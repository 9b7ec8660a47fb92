"""Reports benchmark: the report queries (broker/reports) on 100,000 stored sessions.

    .venv/bin/python bench/reports.py [--sessions N] [--runs R] [--database-url postgresql://...]

Seeds a fresh database directly (the broker's own migrations, then bulk inserts over one
year: technicians in teams, sessions with their keys, an end user's and a technician's
chat line each, handovers, customers' requests with their queue handoffs, surveys), then
asks the broker's `Reports` (the same object the API uses, on the same reader engine) for
each report `--runs` times after a few warm-up calls and reports the median and p90 wall
time per report, the process's CPU time per call and the machine's CPU pressure during
the runs (/proc/pressure/cpu, as bench/core.py records it: the share of time something
waited for a CPU). With ``--database-url`` (PostgreSQL) the data goes into a new role and
schema of that database, both dropped afterwards. The JSON goes to
bench/results/reports-<database>-<timestamp>.json; docs/benchmarks.md explains the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import resource
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c

sys.path.insert(0, str(c.ROOT))

import sqlalchemy as sa  # noqa: E402
from history import postgres_schema  # noqa: E402

from broker.datadir import secure_data_dir  # noqa: E402
from broker.db import create_engine, create_reader, migrate  # noqa: E402
from broker.reports import Grouping, ReportQuery, Reports  # noqa: E402
from broker.schema import (  # noqa: E402
    events,
    handoffs,
    intake_requests,
    sessions,
    support_keys,
    survey_responses,
    team_members,
    teams,
    technicians,
)
from broker.settings import Settings  # noqa: E402
from broker.technicians import Technician  # noqa: E402

TECHNICIANS, TEAMS, CHUNK = 40, 5, 2000
YEAR = 365 * 86400.0
ZONE = "Europe/Berlin"


class Seeder:
    """`count` sessions over the year before `now`, the same for a seed."""

    def __init__(self, engine: Any, count: int, now: float) -> None:
        self.engine, self.count, self.now = engine, count, now
        self.rng = random.Random(20261219)
        self.stats = {"sessions": 0, "handovers": 0, "requests": 0, "surveys": 0}

    async def run(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(technicians.insert(), [
                {"id": n, "email": f"tech{n}@bench.example", "display_name": f"Tech {n}",
                 "password_hash": "unused", "is_admin": n == 1,
                 "created_at": self.now - YEAR, "must_change_password": False}
                for n in range(1, TECHNICIANS + 1)])
            await conn.execute(teams.insert(), [
                {"id": n, "name": f"Team {n}", "created_at": self.now - YEAR}
                for n in range(1, TEAMS + 1)])
            await conn.execute(team_members.insert(), [
                {"team_id": 1 + n % TEAMS, "technician_id": n}
                for n in range(1, TECHNICIANS + 1)])
        for start in range(0, self.count, CHUNK):
            await self._chunk(start, min(self.count, start + CHUNK))

    async def _chunk(self, start: int, end: int) -> None:
        rng = self.rng
        rows: list[dict[str, Any]] = []
        keys, lines, moves, requests, surveys = [], [], [], [], []
        for number in range(start, end):
            sid = secrets.token_hex(16)
            created = self.now - YEAR * (1 - number / self.count) + rng.random()
            owner = rng.randint(1, TECHNICIANS)
            customer = rng.random() < 0.1  # a customer's request: no key
            used = 0.0 if customer else (rng.uniform(10, 300) if rng.random() < 0.9 else None)
            ended = None if used is None else used + rng.uniform(120, 3600)
            rows.append({"id": sid, "technician_id": owner, "state": "ended",
                         "created_at": created,
                         "started_at": None if used is None else created + used,
                         "ended_at": created + (ended if ended is not None else 900)})
            if not customer:
                keys.append({"session_id": sid, "code_hash": secrets.token_hex(8),
                             "token_hash": secrets.token_hex(16), "created_at": created,
                             "expires_at": created + 900,
                             "used_at": None if used is None else created + used})
            if used is not None:
                lines.append({"session_id": sid, "seq": 1, "type": "message", "sender": "p1",
                              "body": "{}", "created_at": created + used + 5})
                lines.append({"session_id": sid, "seq": 2, "type": "message",
                              "sender": f"t{owner}", "body": "{}",
                              "created_at": created + used + rng.uniform(10, 200)})
            if rng.random() < 0.1:
                moves.append({"id": secrets.token_hex(12), "session_id": sid,
                              "from_technician_id": rng.randint(1, TECHNICIANS),
                              "to_technician_id": owner, "to_team_id": None, "note": "",
                              "keep_sender": False, "state": "accepted",
                              "created_at": created + 300, "decided_at": created + 330,
                              "decided_by": owner})
            if customer:
                hid = secrets.token_hex(12)
                moves.append({"id": hid, "session_id": sid, "from_technician_id": None,
                              "to_technician_id": None, "to_team_id": 1 + owner % TEAMS,
                              "note": "", "keep_sender": False, "state": "accepted",
                              "created_at": created, "decided_by": owner,
                              "decided_at": created + rng.uniform(20, 1200)})
                requests.append({
                    "id": secrets.token_hex(12), "kind": "chat", "team_id": 1 + owner % TEAMS,
                    "session_id": sid, "handoff_id": hid, "severity": "standard",
                    "name": "Customer", "description": "help", "fields": "{}",
                    "language": "en", "created_at": created, "due_at": created + 900,
                    "alert_at": created + 720, "target_seconds": 900,
                    "business_hours": False,
                    "breached_at": created + 900 if rng.random() < 0.2 else None})
            if ended is not None and rng.random() < 0.3:
                surveys.append({"session_id": sid, "participant_id": 1,
                                "rating": rng.randint(1, 5), "solved": rng.random() < 0.8,
                                "language": "en", "submitted_at": created + ended + 30})
        async with self.engine.begin() as conn:
            await conn.execute(sessions.insert(), rows)
            for table, batch in ((support_keys, keys), (events, lines), (handoffs, moves),
                                 (intake_requests, requests), (survey_responses, surveys)):
                if batch:
                    await conn.execute(table.insert(), batch)
        self.stats["sessions"] += len(rows)
        self.stats["handovers"] += sum(1 for m in moves if m["from_technician_id"])
        self.stats["requests"] += len(requests)
        self.stats["surveys"] += len(surveys)


def reports(now: float) -> list[tuple[str, Grouping, dict[str, str]]]:
    today = time.strftime("%Y-%m-%d", time.gmtime(now))
    year_ago = time.strftime("%Y-%m-%d", time.gmtime(now - 364 * 86400))
    year = {"from": year_ago, "to": today}
    return [
        ("daily, 30 days, everyone", Grouping.DAY, {}),
        ("daily, a year, everyone", Grouping.DAY, year),
        ("daily, a year, one team", Grouping.DAY, {**year, "team_id": "2"}),
        ("daily, a year, one technician", Grouping.DAY, {**year, "technician_id": "7"}),
        ("per technician, a year", Grouping.TECHNICIAN, year),
        ("per team, a year", Grouping.TEAM, year),
        ("per technician, 30 days", Grouping.TECHNICIAN, {}),
    ]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(service: Reports, admin: Technician, grouping: Grouping,
                  params: dict[str, str], now: float, runs: int, warmup: int
                  ) -> dict[str, Any]:
    query = ReportQuery.parse(grouping, params, default_zone=ZONE, now=now)
    times: list[float] = []
    for number in range(warmup + runs):
        if number == warmup:
            cpu0, pressure0, wall0 = _cpu(), c.cpu_pressure_us(), time.monotonic()
        started = time.perf_counter()
        report = await service.report(admin, query)
        if number >= warmup:
            times.append(time.perf_counter() - started)
    wall = time.monotonic() - wall0
    return {**c.summarize_ms(times), "rows": len(report.rows),
            "sessions_counted": sum(int(r.figures["started"] or 0) for r in report.rows),
            "cpu_ms_per_call": (_cpu() - cpu0) / runs * 1000,
            "cpu_pressure": (c.cpu_pressure_us() - pressure0) / 1e6 / wall}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    try:
        async with contextlib.AsyncExitStack() as stack:
            url = ""
            if args.database_url:
                url = await stack.enter_async_context(postgres_schema(args.database_url))
            return await _run_on(args, root, url)
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _run_on(args: argparse.Namespace, root: Path, database_url: str) -> dict[str, Any]:
    started = time.perf_counter()
    settings = Settings(data_dir=root / "data", database_url=database_url)
    secure_data_dir(settings)
    engine = create_engine(settings.sqlalchemy_url)
    now = time.time()
    seeder = Seeder(engine, args.sessions, now)
    reader = None
    try:
        await migrate(engine)
        await seeder.run()
        if engine.dialect.name == "postgresql":  # as autovacuum would have by now
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(sa.text("VACUUM ANALYZE"))
        seeded = time.perf_counter() - started
        print(f"seeded {seeder.stats} in {seeded:.0f} s", flush=True)
        reader = create_reader(settings.sqlalchemy_url)
        service = Reports(reader or engine)
        admin = Technician(1, "tech1@bench.example", "Tech 1", True)
        figures = {}
        for name, grouping, params in reports(now):
            figure = await measure(service, admin, grouping, params, now, args.runs,
                                   args.warmup)
            figures[name] = {"grouping": grouping.value, "params": params, **figure}
            print(f"{name:34s} median {figure['p50_ms']:8.1f} ms  p90 {figure['p90_ms']:8.1f} ms"
                  f"  CPU {figure['cpu_ms_per_call']:7.1f} ms  rows {figure['rows']:3d}  "
                  f"sessions {figure['sessions_counted']:6d}  CPU pressure "
                  f"{figure['cpu_pressure']:.0%}", flush=True)
    finally:
        if reader is not None:
            await reader.dispose()
        await engine.dispose()
    return {"database": "postgresql" if database_url else "sqlite",
            "seed": {**seeder.stats, "seconds": seeded}, "reports": figures,
            "elapsed_seconds": time.perf_counter() - started}


def main() -> int:
    parser = c.seeded_parser(__doc__, runs=7, warmup=2)
    return c.run_seeded("reports", parser, run)


if __name__ == "__main__":
    sys.exit(main())
