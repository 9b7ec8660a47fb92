"""The history search's words and index (broker/sessions/search.py): SQLite reads its chat
lines and indexes them in bulk, yet a search finds every stored line at once, replaced
notes vanish from it, and FTS5's own integrity check finds the index exact after every
kind of change; the migration that brought the marks, both ways. PostgreSQL stores and
indexes each text with its event: there the same searches must give the same answers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from alembic import command

from broker.core import Broker
from broker.db import _alembic_config, create_engine, migrate
from broker.sessions import search
from broker.settings import Settings

from .conftest import Tech, join, start_session
from .test_history import _ids, _json

_WAITING = sa.text("SELECT (SELECT count(*) FROM events WHERE type = 'message' AND "
                   "rowid > (SELECT events_up_to FROM search_indexed)) + (SELECT count(*) "
                   "FROM session_texts WHERE id > (SELECT up_to FROM search_indexed))")
_CHECK = sa.text("INSERT INTO session_texts_fts (session_texts_fts) VALUES ('integrity-check')")


async def _waiting(broker: Broker) -> int | None:
    """Chat lines not yet read and texts not yet indexed by SQLite's catch-up (None:
    PostgreSQL, which has no marks)."""
    if broker.engine.dialect.name != "sqlite":
        return None
    async with broker.engine.connect() as conn:
        return int(await conn.scalar(_WAITING) or 0)


async def _say(client: TestClient, tech: Tech, session_id: str, text: str) -> None:
    await _json(await client.post(f"/api/v1/sessions/{session_id}/messages",
                                  headers=tech.auth, json={"text": text}), 201)


async def _exact(broker: Broker) -> None:
    """FTS5's integrity check: the index holds exactly the stored texts (after a
    catch-up; it raises "database disk image is malformed" otherwise)."""
    if broker.engine.dialect.name == "sqlite":
        async with broker.engine.begin() as conn:
            await search.catch_up(conn)
            await conn.execute(_CHECK)


async def test_a_search_finds_what_the_index_has_not_caught_up_with(
        client: TestClient, tech: Tech, broker: Broker,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer waits for a quiet moment (made long here), or for a backlog (made short);
    a search never waits for either."""
    monkeypatch.setattr(search, "QUIET_SECONDS", 30.0)
    monkeypatch.setattr(search, "CATCH_UP_EVENTS", 3)
    started = await start_session(client, tech)
    sid = started["session_id"]
    await join(client, started["key"])
    sqlite = broker.engine.dialect.name == "sqlite"
    await _ids(client, tech, "q=anything")  # caught up: nothing waits
    assert await _waiting(broker) == (0 if sqlite else None)
    await _say(client, tech, sid, "first line about the printer")
    await _say(client, tech, sid, "second line about the scanner")
    await _say(client, tech, sid, "third line about the plotter")
    assert await _waiting(broker) == (3 if sqlite else None)
    assert await _ids(client, tech, "q=plotter") == [sid]
    assert await _waiting(broker) == (0 if sqlite else None)  # the search caught up first

    monkeypatch.setattr(search, "CATCH_UP_BACKLOG", 4)
    for number in range(1, 8):  # the writer keeps the backlog at four or fewer
        await _say(client, tech, sid, f"line {number} about the modem")
        assert (await _waiting(broker) or 0) <= 4, number
    for word in ("printer", "scanner", "modem", "the", "7"):
        assert await _ids(client, tech, f"q={word}") == [sid], word
    assert await _ids(client, tech, "q=fax") == []
    await _exact(broker)


async def test_the_writer_catches_up_when_quiet(client: TestClient, tech: Tech,
                                               broker: Broker) -> None:
    started = await start_session(client, tech)
    await join(client, started["key"])
    for number in range(3):
        await _say(client, tech, started["session_id"], f"router line {number}")
    if broker.engine.dialect.name == "sqlite":
        async with asyncio.timeout(5):  # QUIET_SECONDS after the last line
            while await _waiting(broker):
                await asyncio.sleep(0.02)
    await _exact(broker)


async def test_replaced_notes_leave_the_index_exact(client: TestClient, tech: Tech,
                                                    broker: Broker) -> None:
    """Notes are the one text that is deleted. The newest row deleted, SQLite numbers the
    next one alike: the mark must not skip it nor the trigger drop it twice."""
    first = await start_session(client, tech)
    second = await start_session(client, tech)
    await join(client, first["key"])
    notes = f"/api/v1/sessions/{first['session_id']}/notes"
    for number, text in enumerate(["alpha notes", "beta notes", "gamma notes"]):
        await _json(await client.put(notes, headers=tech.auth, json={"notes": text}), 200)
        assert await _ids(client, tech, f"q={text.split()[0]}") == [first["session_id"]]
        if number == 1:  # a chat line after the notes: they are no longer the newest row
            await _say(client, tech, first["session_id"], "delta line")
        await _exact(broker)
    await _json(await client.put(f"/api/v1/sessions/{second['session_id']}/notes",
                                 headers=tech.auth, json={"notes": "epsilon"}), 200)
    await _json(await client.put(notes, headers=tech.auth, json={"notes": "zeta"}), 200)
    await _exact(broker)
    expected = {"alpha": [], "beta": [], "gamma": [], "zeta": [first["session_id"]],
                "delta": [first["session_id"]], "epsilon": [second["session_id"]],
                "notes": []}
    for word, sessions in expected.items():
        assert await _ids(client, tech, f"q={word}") == sessions, word
    await _exact(broker)


async def test_the_mark_migration_both_ways(tmp_path: Path, database_url: str) -> None:
    """Up: what is stored counts as read and indexed. Down (to 0020, which stores and
    indexes each text with its event): what waited is stored and indexed first."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    settings.data_dir.mkdir(parents=True)
    engine = create_engine(settings.sqlalchemy_url)

    async def to(revision: str) -> None:
        async with engine.begin() as conn:
            await conn.run_sync(
                lambda sync: command.downgrade(_alembic_config(sync), revision)
                if revision != "head" else command.upgrade(_alembic_config(sync), revision))

    async def store(*lines: str, notes: str | None = None) -> None:
        """Chat lines as the journal stores them on SQLite (no text rows), and notes."""
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO sessions (id, state, created_at) VALUES ('s1', 'ended', 1.0) "
                "ON CONFLICT DO NOTHING"))
            seq = await conn.scalar(sa.text("SELECT count(*) FROM events"))
            for line in lines:
                seq += 1
                await conn.execute(sa.text(
                    "INSERT INTO events (session_id, seq, type, body, created_at) "
                    "VALUES ('s1', :seq, 'message', :body, 1.0)"),
                    {"seq": seq, "body": json.dumps({"author": None, "data": {"text": line}})})
            if notes:
                await search.add(conn, "s1", "notes", notes)

    async def found(word: str) -> int:
        async with engine.begin() as conn:
            await conn.execute(_CHECK)
            return int(await conn.scalar(sa.text(
                "SELECT count(*) FROM session_texts_fts WHERE session_texts_fts MATCH :w"),
                {"w": word}) or 0)

    async def marks() -> tuple[int, int]:
        async with engine.connect() as conn:
            return tuple((await conn.execute(sa.text(
                "SELECT events_up_to, up_to FROM search_indexed"))).one())

    try:
        await migrate(engine)
        if engine.dialect.name != "sqlite":
            # Nothing to mark: the table is SQLite's alone, both ways.
            async with engine.connect() as conn:
                assert await conn.scalar(sa.text("SELECT to_regclass('search_indexed')")) is None
            await to("0020")
            await to("head")
            async with engine.connect() as conn:
                assert await conn.scalar(sa.text("SELECT to_regclass('search_indexed')")) is None
            return
        await store("Printer one", "Scanner two", notes="Router notes")
        assert await marks() == (0, 0)
        await to("0020")
        assert [await found(w) for w in ("printer", "scanner", "router")] == [1, 1, 1]
        await to("head")
        assert await marks() == (2, 3)  # two events read, three texts indexed
        await store("Modem three")
        assert await found("modem") == 0
        async with engine.begin() as conn:
            assert await search.catch_up(conn)
        assert await found("modem") == 1
        assert await marks() == (3, 4)
        await store("Fax four", "Hub five", "Switch six")  # read two at a time
        async with engine.begin() as conn:
            assert not await search.catch_up(conn, 2)
        assert (await marks(), await found("hub"), await found("switch")) == ((5, 6), 1, 0)
        async with engine.begin() as conn:
            assert await search.catch_up(conn, 2)
        assert (await marks(), await found("switch")) == ((6, 7), 1)
    finally:
        await engine.dispose()
