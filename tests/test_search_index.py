"""The history search's index (broker/sessions/search.py): SQLite's catches up in bulk, yet
a search finds every stored text at once, replaced notes vanish from it, and FTS5's own
integrity check finds the index exact after every kind of change; the migration that
brought the mark, both ways. PostgreSQL indexes each row as it is stored: there the same
searches must give the same answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from alembic import command

from broker.clock import FakeClock
from broker.core import Broker
from broker.db import _alembic_config, create_engine, migrate
from broker.sessions import search
from broker.settings import Settings

from .conftest import Tech, join, start_session
from .test_history import _ids, _json

_WAITING = sa.text("SELECT count(*) FROM session_texts "
                   "WHERE id > (SELECT up_to FROM search_indexed)")
_CHECK = sa.text("INSERT INTO session_texts_fts (session_texts_fts) VALUES ('integrity-check')")


async def _waiting(broker: Broker) -> int | None:
    """Texts stored but not yet in SQLite's index (None: PostgreSQL, which has no mark)."""
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
        client: TestClient, tech: Tech, clock: FakeClock, broker: Broker) -> None:
    started = await start_session(client, tech)
    sid = started["session_id"]
    await join(client, started["key"])
    sqlite = broker.engine.dialect.name == "sqlite"
    clock.advance(search.INDEX_EVERY)
    await _say(client, tech, sid, "first line about the printer")
    # The writer brought the index up to date with that batch; the next ones wait for
    # INDEX_EVERY seconds to pass (the fake clock stands still).
    await _say(client, tech, sid, "second line about the scanner")
    await _say(client, tech, sid, "third line about the plotter")
    assert await _waiting(broker) == (2 if sqlite else None)
    assert await _ids(client, tech, "q=plotter") == [sid]
    assert await _waiting(broker) == (0 if sqlite else None)  # the search caught up first

    await _say(client, tech, sid, "fourth line about the modem")
    assert await _waiting(broker) == (1 if sqlite else None)
    clock.advance(search.INDEX_EVERY)
    await _say(client, tech, sid, "fifth line about the router")
    assert await _waiting(broker) == (0 if sqlite else None)  # the writer's turn again
    for word in ("printer", "scanner", "modem", "router", "the"):
        assert await _ids(client, tech, f"q={word}") == [sid], word
    assert await _ids(client, tech, "q=fax") == []
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
    """Up: what is stored counts as indexed. Down (to 0020, which indexes each row as it
    is stored): what waited is indexed first."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    settings.data_dir.mkdir(parents=True)
    engine = create_engine(settings.sqlalchemy_url)

    async def to(revision: str) -> None:
        async with engine.begin() as conn:
            await conn.run_sync(
                lambda sync: command.downgrade(_alembic_config(sync), revision)
                if revision != "head" else command.upgrade(_alembic_config(sync), revision))

    async def texts(*words: str) -> None:
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO sessions (id, state, created_at) VALUES ('s1', 'ended', 1.0) "
                "ON CONFLICT DO NOTHING"))
            await search.insert(conn, [search.row("s1", "message", w) for w in words
                                       if search.row("s1", "message", w) is not None])

    async def scalar(statement: str) -> Any:
        async with engine.connect() as conn:
            return await conn.scalar(sa.text(statement))

    try:
        await migrate(engine)
        if engine.dialect.name != "sqlite":
            # Nothing to mark: the table is SQLite's alone, both ways.
            assert await scalar("SELECT to_regclass('search_indexed')") is None
            await to("0020")
            await to("head")
            assert await scalar("SELECT to_regclass('search_indexed')") is None
            return
        await texts("one two", "three")
        assert await scalar("SELECT up_to FROM search_indexed") == 0
        await to("0020")
        assert await scalar("SELECT count(*) FROM session_texts_fts "
                            "WHERE session_texts_fts MATCH 'three'") == 1
        async with engine.begin() as conn:
            await conn.execute(_CHECK)
        await to("head")
        assert await scalar("SELECT up_to FROM search_indexed") == 2
        await texts("four")
        async with engine.begin() as conn:
            await search.catch_up(conn)
            await conn.execute(_CHECK)
        assert await scalar("SELECT count(*) FROM session_texts_fts "
                            "WHERE session_texts_fts MATCH 'four OR one'") == 2
    finally:
        await engine.dispose()
