"""The audit log: its hash chain (verify finds a changed, deleted or moved record), pruning
with an anchor, `supportbroker audit verify|export` as a real process, and the login acts."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.audit import Action, AuditActor, AuditService
from broker.audit.model import check_no_secrets
from broker.clock import FakeClock
from broker.core import Broker
from broker.db import create_engine, migrate
from broker.schema.audit import audit_chain, audit_records
from broker.settings import Settings

from .conftest import PASSWORD, Tech, csrf_from, login
from .test_cli import _env, _run

ALICE = AuditActor.technician(1, "Alice")


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    settings.data_dir.mkdir(mode=0o700, parents=True)
    engine = create_engine(settings.sqlalchemy_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


async def _fill(audit: AuditService, clock: FakeClock, count: int = 5) -> None:
    for n in range(count):
        await audit.record(Action.NOTES_CHANGED, actor=ALICE, session_id=f"s{n}",
                           address="192.0.2.1", details={"length": n, "text": "ä\u00e9"})
        clock.advance(10)


async def _execute(engine: AsyncEngine, statement: str, **params: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text(statement), params)


# Each way of breaking the chain, and the record verify must name.
TAMPERING: dict[str, tuple[Callable[[AsyncEngine], Any], int]] = {
    "changed": (lambda e: _execute(e, "UPDATE audit_records SET details = '{}' WHERE id = 3"), 4),
    "actor changed": (lambda e: _execute(
        e, "UPDATE audit_records SET actor_name = 'Mallory' WHERE id = 2"), 3),
    "deleted": (lambda e: _execute(e, "DELETE FROM audit_records WHERE id = 3"), 4),
    "newest changed": (lambda e: _execute(
        e, "UPDATE audit_records SET address = '203.0.113.9' WHERE id = 5"), 5),
    "newest deleted": (lambda e: _execute(e, "DELETE FROM audit_records WHERE id = 5"), 5),
    "oldest deleted": (lambda e: _execute(e, "DELETE FROM audit_records WHERE id = 1"), 1),
}


async def _swap(engine: AsyncEngine, first: int = 2, second: int = 3) -> None:
    """Reorder two records: each takes the other's place (number and link kept)."""
    columns = ("at", "actor_kind", "actor_id", "actor_name", "address", "session_id",
               "action", "details")
    async with engine.begin() as conn:
        rows = {row.id: row for row in (await conn.execute(
            sa.select(audit_records).where(audit_records.c.id.in_([first, second])))).all()}
        for mine, theirs in ((first, second), (second, first)):
            await conn.execute(audit_records.update().where(audit_records.c.id == mine).values(
                **{name: getattr(rows[theirs], name) for name in columns}))


TAMPERING["reordered"] = (_swap, 3)


async def test_a_whole_chain_verifies(engine: AsyncEngine, clock: FakeClock) -> None:
    audit = AuditService(engine, clock)
    assert (await audit.verify()).ok  # empty
    await _fill(audit, clock)
    verdict = await audit.verify()
    assert verdict.ok and verdict.checked == 5
    records = [record async for record in audit.records()]
    assert [record.id for record in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.digest() for a, b in zip(records, records[1:], strict=False))
    async with engine.connect() as conn:
        head = (await conn.execute(sa.select(audit_chain))).one()
    assert (head.last_id, head.last_hash) == (5, records[-1].digest())


@pytest.mark.parametrize("how", sorted(TAMPERING))
async def test_verify_names_the_first_broken_link(engine: AsyncEngine, clock: FakeClock,
                                                  how: str) -> None:
    audit = AuditService(engine, clock)
    await _fill(audit, clock)
    tamper, broken_at = TAMPERING[how]
    await tamper(engine)
    verdict = await audit.verify()
    assert not verdict.ok
    assert verdict.broken_at == broken_at, verdict
    assert str(broken_at) in verdict.problem


async def test_pruning_anchors_the_rest(engine: AsyncEngine, clock: FakeClock) -> None:
    audit = AuditService(engine, clock, retention_seconds=25)
    await _fill(audit, clock)  # at 0, 10, 20, 30, 40; now 50: 0, 10 and 20 are too old
    assert await audit.prune(force=False) is not None
    assert await audit.prune() is None  # once an hour
    records = [record async for record in audit.records()]
    assert [record.id for record in records] == [4, 5, 6]
    anchor = json.loads(records[-1].details)
    assert records[-1].action == Action.PRUNED
    assert (anchor["through"], anchor["removed"]) == (3, 3)
    assert anchor["hash"] == records[0].prev_hash
    assert (await audit.verify()).ok
    # More records, another prune an hour on: the first anchor goes too, the chain holds.
    await _fill(audit, clock, 2)
    clock.advance(3600)
    await _fill(audit, clock, 1)
    assert await audit.prune() is not None
    records = [record async for record in audit.records()]
    assert [record.action for record in records] == [Action.NOTES_CHANGED, Action.PRUNED]
    assert (await audit.verify()).ok
    # Deleting what the anchor vouches for is found.
    await _execute(engine, "DELETE FROM audit_records WHERE id = :id", id=records[0].id)
    verdict = await audit.verify()
    assert not verdict.ok and verdict.broken_at == records[1].id
    assert f"record {records[0].id} is missing" in verdict.problem


async def test_concurrent_records_share_one_chain(engine: AsyncEngine,
                                                  clock: FakeClock) -> None:
    import asyncio

    audit = AuditService(engine, clock)
    made = await asyncio.gather(*(audit.record(Action.NOTES_CHANGED, session_id=str(n))
                                  for n in range(30)))
    assert sorted(record.id for record in made) == list(range(1, 31))
    assert [record.session_id for record in made] == [str(n) for n in range(30)]
    assert (await audit.verify()).checked == 30


def test_details_never_hold_credentials() -> None:
    for details in ({"password": "x"}, {"api_token": "x"}, {"nested": {"key": "x"}},
                    {"list": [{"secret": 1}]}, {"Code": "123-456"}):
        with pytest.raises(ValueError, match="credentials"):
            check_no_secrets(details)
    check_no_secrets({"key_expires_at": 1.0, "email": "a@example.com", "serial": 3})


async def test_failed_guesses_are_counted_per_address_and_minute(
        engine: AsyncEngine, clock: FakeClock) -> None:
    audit = AuditService(engine, clock)
    clock.advance(60 - clock.now() % 60)  # the start of a minute
    for address in ("192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.1"):
        audit.guess_failed(address)
    clock.advance(30)
    assert await audit.flush_guesses() == 0  # the minute is not over
    audit.guess_failed("192.0.2.1")
    clock.advance(30)
    audit.guess_failed("192.0.2.1")  # the next minute
    assert await audit.flush_guesses() == 2
    await audit.close()  # the last minute's too
    records = [record async for record in audit.records()]
    assert [(r.action, r.address, json.loads(r.details)["count"]) for r in records] == [
        (Action.KEY_GUESSES_FAILED, "192.0.2.1", 4), (Action.KEY_GUESSES_FAILED, "192.0.2.2", 1),
        (Action.KEY_GUESSES_FAILED, "192.0.2.1", 1)]
    assert all(r.actor_kind == "anonymous" for r in records)


async def test_cli_verify_and_export(tmp_path: Path) -> None:
    """As a real process on SQLite: verify's exit status and message, both export formats."""
    env = _env(tmp_path)
    code, out, err = await _run("technician", "add", "--email", "ana@example.com",
                                "--name", "Ana", env=env, stdin="s3cret-password\n")
    assert code == 0, err
    code, token, err = await _run("token", "create", "--email", "ana@example.com", env=env)
    assert code == 0, err
    code, out, err = await _run("audit", "verify", env=env)
    assert (code, out.strip()) == (0, "The audit log is whole: 2 records checked."), err

    code, out, err = await _run("audit", "export", env=env)
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["action"] for line in lines] == [Action.TECHNICIAN_CREATED,
                                                  Action.TOKEN_CREATED]
    assert lines[1]["actor"] == {"kind": "system", "id": None, "name": "command line"}
    assert lines[1]["details"]["technician"]["email"] == "ana@example.com"
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    assert token.strip() not in out and "s3cret-password" not in out

    code, out, err = await _run("audit", "export", "--format", "csv", "--since",
                                lines[1]["at"], env=env)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["action"] for row in rows] == [Action.TOKEN_CREATED]
    assert rows[0]["hash"] == lines[1]["hash"] and rows[0]["actor_name"] == "command line"
    assert json.loads(rows[0]["details"]) == lines[1]["details"]
    code, out, _ = await _run("audit", "export", "--since", "2999-01-01", env=env)
    assert (code, out) == (0, "")

    # Changed, deleted, reordered: each found by the command (exit status 2), each undone
    # before the next.
    engine = create_engine(Settings(data_dir=tmp_path).sqlalchemy_url)
    try:
        async with engine.connect() as conn:
            rows = {row.id: row._asdict() for row in (await conn.execute(
                sa.select(audit_records))).all()}
        for tamper, undo, found in (
                (lambda: _execute(engine, "UPDATE audit_records SET actor_name = 'x' "
                                          "WHERE id = 1"),
                 lambda: _execute(engine, "UPDATE audit_records SET actor_name = :name "
                                          "WHERE id = 1", name=rows[1]["actor_name"]),
                 "broken at record 2: the link from record 1 to record 2 is broken"),
                (lambda: _execute(engine, "DELETE FROM audit_records WHERE id = 2"),
                 lambda: _insert(engine, rows[2]),
                 "broken at record 2: the chain's head names record 2, but the last record "
                 "is 1"),
                (lambda: _swap(engine, 1, 2), lambda: _swap(engine, 1, 2),
                 "broken at record 2: the link from record 1 to record 2 is broken")):
            await tamper()
            code, out, err = await _run("audit", "verify", env=env)
            assert (code, out) == (2, ""), err
            assert found in err, err
            await undo()
            assert (await AuditService(engine, FakeClock()).verify()).ok
    finally:
        await engine.dispose()


async def _insert(engine: AsyncEngine, row: dict[str, Any]) -> None:
    async with engine.begin() as conn:
        await conn.execute(audit_records.insert().values(**row))


# -- the acts of logging in and out ----------------------------------------------------------


async def _acts(broker: Broker) -> list[tuple[str, str, str | None]]:
    return [(r.action, r.actor_name, r.address) async for r in broker.audit.records()]


async def test_login_acts(client: TestClient, broker: Broker, tech: Tech) -> None:
    email = tech.technician.email
    before = len(await _acts(broker))
    page = await client.get("/login")
    response = await client.post("/login", data={
        "email": email, "password": "wrong " + PASSWORD,
        "_csrf": csrf_from(await page.text())})
    assert response.status == 401
    csrf = await login(client, email)
    response = await client.post("/logout", data={"_csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    records = [r async for r in broker.audit.records()][before:]
    assert [(r.action, r.actor_kind, r.actor_name, r.address) for r in records] == [
        (Action.LOGIN_FAILED, "anonymous", "", "127.0.0.1"),
        (Action.LOGIN, "technician", "Alice", "127.0.0.1"),
        (Action.LOGOUT, "technician", "Alice", "127.0.0.1")]
    assert json.loads(records[0].details) == {"email": email,
                                               "reason": "wrong_email_or_password"}
    assert all("wrong " + PASSWORD not in r.details for r in records)
    assert (await broker.audit.verify()).ok


async def test_admins_read_the_log_a_page_at_a_time(client: TestClient, broker: Broker,
                                                     make_tech: Any) -> None:
    root = await make_tech("Root", admin=True)
    bob = await make_tech("Bob")
    for _ in range(3):
        response = await client.post("/api/v1/sessions", headers=bob.auth)
        assert response.status == 201
    response = await client.get("/api/v1/audit", headers=bob.auth)
    assert response.status == 403
    seen: list[dict[str, Any]] = []
    query = {"actor_kind": "technician", "actor_id": str(bob.technician.id),
             "action": "session.started,key.issued", "limit": "4"}
    while True:
        response = await client.get("/api/v1/audit", headers=root.auth, params=query)
        assert response.status == 200, await response.text()
        page = await response.json()
        seen += page["records"]
        if page["next_cursor"] is None:
            break
        query["cursor"] = page["next_cursor"]
    assert [r["action"] for r in seen] == ["key.issued", "session.started"] * 3
    assert [r["id"] for r in seen] == sorted((r["id"] for r in seen), reverse=True)
    assert all(r["actor"] == {"kind": "technician", "id": str(bob.technician.id),
                              "name": "Bob"} and r["address"] == "127.0.0.1" for r in seen)
    one = seen[0]["session_id"]
    response = await client.get("/api/v1/audit", headers=root.auth,
                                params={"session_id": one})
    assert [r["action"] for r in (await response.json())["records"]] == [
        "key.issued", "session.started"]
    for bad, code in (({"action": "nope"}, "invalid_action"), ({"cursor": "x"}, "bad_cursor"),
                      ({"from": "yesterday"}, "invalid_time"),
                      ({"actor_kind": "robot"}, "invalid_input")):
        response = await client.get("/api/v1/audit", headers=root.auth, params=bad)
        assert (response.status, (await response.json())["error"]) == (400, code)


async def test_two_writers_keep_one_chain(engine: AsyncEngine, settings: Settings,
                                          clock: FakeClock) -> None:
    """Two writers of their own (two nodes' engines: on PostgreSQL two connection pools,
    on SQLite two connections) appending at once: one order, no gaps, no forks."""
    import asyncio

    other = create_engine(settings.sqlalchemy_url)
    try:
        writers = [AuditService(engine, clock), AuditService(other, clock)]

        async def write(n: int) -> Any:
            return await writers[n % 2].record(Action.NOTES_CHANGED, session_id=f"w{n % 2}",
                                               details={"n": n})

        made = await asyncio.gather(*(write(n) for n in range(40)))
    finally:
        await other.dispose()
    assert sorted(record.id for record in made) == list(range(1, 41))
    verdict = await AuditService(engine, clock).verify()
    assert verdict.ok and verdict.checked == 40, verdict


async def test_a_resent_event_is_one_act(client: TestClient, broker: Broker,
                                         tech: Tech) -> None:
    """The journal tells the audit log of an event stored for the first time only."""
    response = await client.post("/api/v1/sessions", headers=tech.auth)
    session_id = (await response.json())["session_id"]
    actor = broker.sessions.technician_actor(tech.technician)
    for _ in range(2):
        await broker.journal.append(session_id, "technician_joined", {"name": "Bob"},
                                    author=actor, client_id="c1")
    acts = [r.action async for r in broker.audit.records() if r.session_id == session_id]
    assert acts == [Action.SESSION_STARTED, Action.KEY_ISSUED, Action.COLLABORATOR_ADDED]


async def test_a_wrong_second_factor_is_a_failed_login(broker: Broker, tech: Tech) -> None:
    from broker.factors import WrongCode

    with pytest.raises(WrongCode):
        await broker.factors.verify(tech.technician, "000000")
    (record,) = [r async for r in broker.audit.records() if r.action == Action.LOGIN_FAILED]
    assert (record.actor_kind, record.actor_name) == ("technician", "Alice")
    assert json.loads(record.details)["reason"] == "wrong_second_factor"
    assert "000000" not in record.details
