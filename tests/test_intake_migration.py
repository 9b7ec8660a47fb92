"""Migration 0010 lets sessions, handoffs and deliveries be without a technician: on
SQLite by editing the tables' stored definitions, which must keep every row (a copy of
`sessions` dropped with foreign keys on would delete every event) and every other rule.
0012 gives the requests made before it their targets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import broker.db
from broker.settings import Settings

BEFORE = (
    "INSERT INTO technicians VALUES (1, 'a@example.com', 'A', 'x', false, 0)",
    "INSERT INTO teams VALUES (1, 'Tier 1', 0)",
    "INSERT INTO sessions (id, technician_id, state, created_at) VALUES ('s1', 1, 'active', 0)",
    "INSERT INTO participants VALUES (1, 's1', 'end_user', 'h1', 'Dana', 0)",
    "INSERT INTO events (session_id, seq, type, sender, body, created_at) "
    "VALUES ('s1', 1, 'joined', 'p1', '{}', 0)",
    "INSERT INTO handoffs (id, session_id, from_technician_id, to_team_id, note, keep_sender, "
    "state, created_at) VALUES ('h1', 's1', 1, 1, 'n', false, 'pending', 0)",
    "INSERT INTO deliveries (id, session_id, technician_id, channel, recipient, language, "
    "status, attempts, created_at, updated_at) "
    "VALUES ('d1', 's1', 1, 'email', 'd@example.com', 'en', 'sent', 1, 0, 0)",
    "INSERT INTO delivery_attempts (delivery_id, at, outcome, detail) "
    "VALUES ('d1', 0, 'accepted', 'ok')",
)
COUNTS = ("sessions", "participants", "events", "handoffs", "deliveries", "delivery_attempts")


def _upgrade(to: str) -> Callable[[sa.Connection], None]:
    def run(connection: sa.Connection) -> None:
        config = Config()
        config.set_main_option("script_location",
                               str(Path(broker.db.__file__).parent / "migrations"))
        config.attributes["connection"] = connection
        command.upgrade(config, to)
    return run


async def test_owners_may_be_missing_and_nothing_is_lost(tmp_path: Path,
                                                         database_url: str) -> None:
    url = Settings(data_dir=tmp_path, database_url=database_url).sqlalchemy_url
    engine = broker.db.create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade("0009"))
            for statement in BEFORE:
                await conn.execute(sa.text(statement))
            await conn.run_sync(_upgrade("0010"))
        async with engine.begin() as conn:
            counts = [await conn.scalar(sa.select(sa.func.count()).select_from(
                sa.table(table))) for table in COUNTS]
            assert counts == [1] * len(COUNTS)
            await conn.execute(sa.text("INSERT INTO sessions (id, state, created_at) "
                                       "VALUES ('s2', 'active', 0)"))
            await conn.execute(sa.text(
                "INSERT INTO handoffs (id, session_id, to_team_id, note, keep_sender, state, "
                "created_at) VALUES ('h2', 's2', 1, 'n', false, 'pending', 0)"))
            await conn.execute(sa.text(
                "INSERT INTO deliveries (id, channel, recipient, language, status, attempts, "
                "created_at, updated_at, content) VALUES ('d2', 'email', 't@example.com', "
                "'en', 'pending', 0, 0, 0, '{}')"))
            if conn.dialect.name == "sqlite":
                check = await conn.scalar(sa.text("PRAGMA integrity_check"))
                assert check == "ok"
            # 0012: a request from before keeps, as its target, its time to its due time.
            await conn.execute(sa.text(
                "INSERT INTO intake_requests (id, kind, team_id, session_id, severity, name, "
                "description, fields, language, created_at, due_at, alert_at) VALUES "
                "('r1', 'chat', 1, 's2', 'high', 'Dana', 'Help', '{}', 'en', 100, 3700, 2980)"))
            await conn.run_sync(_upgrade("0012"))
            target = (await conn.execute(sa.text(
                "SELECT target_seconds, business_hours FROM intake_requests"))).one()
            assert tuple(target) == (3600, False)
        # The other rules hold still: a technician that does not exist, a state left out.
        for statement in (
                "INSERT INTO sessions (id, technician_id, state, created_at) "
                "VALUES ('s3', 99, 'active', 0)",
                "INSERT INTO sessions (id, created_at) VALUES ('s4', 0)"):
            with pytest.raises(sa.exc.IntegrityError):
                async with engine.begin() as conn:
                    await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()
