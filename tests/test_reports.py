"""Reports (broker/reports, GET /api/v1/reports/...): the figures of a seeded dataset with
known answers, per day in a time zone with a summer-time change, per technician and per
team; who may read whose; the CSV. On SQLite and PostgreSQL (BROKER_TEST_DATABASE_URL)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.core import Broker
from broker.reports.days import Days, zone
from broker.schema import (
    team_members,
    teams,
)

from .conftest import Tech
from .report_support import Seed, at

BERLIN = "Europe/Berlin"
RANGE = "from=2026-10-24&to=2026-10-26"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 10, 28, 12, tzinfo=UTC).timestamp())


@pytest.fixture
async def world(broker: Broker, make_tech: Any) -> dict[str, Any]:
    """Alice (team Support), Bob (Support and "=Ops"), an admin in no team. Berlin left
    summer time on 2026-10-25 at 01:00 UTC: local midnights are 22:00 UTC before, 23:00
    UTC after."""
    alice, bob = await make_tech("Alice"), await make_tech("Bob")
    admin = await make_tech("Admin", admin=True)
    a, b = alice.technician.id, bob.technician.id
    seed = Seed(broker)
    async with broker.engine.begin() as conn:
        support = (await conn.execute(teams.insert().values(name="Support", created_at=0)
                                      .returning(teams.c.id))).scalar_one()
        ops = (await conn.execute(teams.insert().values(name="=Ops", created_at=0)
                                  .returning(teams.c.id))).scalar_one()
        await conn.execute(team_members.insert(), [
            {"team_id": support, "technician_id": a}, {"team_id": support, "technician_id": b},
            {"team_id": ops, "technician_id": b}])
    # Berlin 25 Oct 00:30 (24 Oct in UTC): joined after 60 s, answered 30 s later.
    await seed.session(a, "2026-10-24T22:30", used=60, first_line=90, ended=660,
                       survey=(5, True))
    # Berlin 25 Oct 23:30 (winter time).
    await seed.session(a, "2026-10-25T22:30", used=120, first_line=210, ended=1320,
                       survey=(3, False))
    # Berlin 26 Oct 00:30 (25 Oct in UTC): the key ran out unused.
    await seed.session(b, "2026-10-25T23:30", ended=900)
    # 24 Oct: joined after 30 s, no chat line yet; Alice handed it to Bob at 10:05.
    s4 = await seed.session(b, "2026-10-24T10:00", used=30)
    await seed.handoff(s4, a, b, at("2026-10-24T10:05"))
    # A customer's chat in Ops' queue, nobody took it, its target missed (26 Oct).
    s5 = await seed.session(None, "2026-10-26T08:00", started=0, key=False)
    await seed.request(ops, "2026-10-26T08:00", sid=s5, breached=True,
                       handoff=await seed.handoff(s5, None, None, at("2026-10-26T08:00"),
                                                  state="pending", team=ops))
    # A customer's chat Alice took from Support's queue after 300 s (25 Oct).
    s6 = await seed.session(a, "2026-10-25T09:00", started=0, first_line=400, ended=1000,
                            key=False)
    await seed.request(support, "2026-10-25T09:00", sid=s6,
                       handoff=await seed.handoff(s6, None, a, at("2026-10-25T09:00"),
                                                  team=support))
    # A message left for Support, answered late by Bob (26 Oct).
    await seed.request(support, "2026-10-26T09:00", breached=True, answered_by=b)
    # Outside the range: 27 Oct.
    await seed.session(a, "2026-10-27T12:00", used=10, ended=20)
    return {"alice": alice, "bob": bob, "admin": admin, "support": support, "ops": ops}


async def _get(client: TestClient, who: Tech, path: str, status: int = 200) -> Any:
    response = await client.get(f"/api/v1/reports/{path}", headers=who.auth)
    assert response.status == status, await response.text()
    return await response.json()


def _figures(row: dict[str, Any], *names: str) -> tuple[Any, ...]:
    return tuple(row[name] for name in names)


SESSION = ("started", "joined", "ended", "join_seconds", "first_response_seconds",
           "handling_seconds", "surveys", "rating", "solved_share")
OTHERS = ("handed_over", "requests", "queue_wait_seconds", "breaches")


async def test_daily_figures_in_berlin_and_in_utc(client: TestClient,
                                                  world: dict[str, Any]) -> None:
    body = await _get(client, world["admin"], f"daily?{RANGE}&tz={BERLIN}")
    assert (body["from"], body["to"], body["time_zone"]) == ("2026-10-24", "2026-10-26", BERLIN)
    rows = {row["day"]: row for row in body["rows"]}
    assert list(rows) == ["2026-10-24", "2026-10-25", "2026-10-26"]
    assert _figures(rows["2026-10-24"], *SESSION) == (1, 1, 0, 30, None, None, 0, None, None)
    assert _figures(rows["2026-10-24"], *OTHERS) == (1, 0, None, 0)
    assert _figures(rows["2026-10-25"], *SESSION) == (
        3, 3, 3, 90, pytest.approx((30 + 90 + 400) / 3, abs=1e-3),
        pytest.approx((600 + 1200 + 1000) / 3, abs=1e-3), 2, 4, 0.5)
    assert _figures(rows["2026-10-25"], *OTHERS) == (0, 1, 300, 0)
    assert _figures(rows["2026-10-26"], *SESSION) == (2, 1, 1, None, None, None, 0, None, None)
    assert _figures(rows["2026-10-26"], *OTHERS) == (0, 2, None, 2)
    # In UTC the first session is on the 24th and Bob's unused key on the 25th.
    utc = {row["day"]: row for row in (await _get(
        client, world["admin"], f"daily?{RANGE}&tz=UTC"))["rows"]}
    assert [utc[day]["started"] for day in sorted(utc)] == [2, 3, 1]
    # Without tz: the business time zone (Berlin, the default); without dates: the 30
    # days up to today (28 Oct).
    default = await _get(client, world["admin"], "daily")
    assert (default["from"], default["to"], default["time_zone"]) == (
        "2026-09-29", "2026-10-28", BERLIN)
    assert sum(row["started"] for row in default["rows"]) == 7
    assert len(default["rows"]) == 30


async def test_per_technician_and_per_team(client: TestClient, world: dict[str, Any]) -> None:
    alice, bob = world["alice"].technician, world["bob"].technician
    rows = (await _get(client, world["admin"], f"technicians?{RANGE}"))["rows"]
    assert [(row["technician_id"], row["technician"]) for row in rows] == [
        (alice.id, "Alice"), (bob.id, "Bob"), (None, None)]
    by = {row["technician_id"]: row for row in rows}
    assert _figures(by[alice.id], "started", "joined", "ended", "handed_over", "requests",
                    "queue_wait_seconds", "breaches", "surveys") == (3, 3, 3, 1, 1, 300, 0, 2)
    assert _figures(by[bob.id], "started", "joined", "ended", "join_seconds", "handed_over",
                    "requests", "breaches") == (2, 1, 1, 30, 0, 1, 1)
    assert _figures(by[None], "started", "joined", "requests", "breaches") == (1, 1, 1, 1)
    teams_rows = (await _get(client, world["admin"], f"teams?{RANGE}"))["rows"]
    assert [row["team"] for row in teams_rows] == ["=Ops", "Support"]
    by = {row["team_id"]: row for row in teams_rows}
    assert _figures(by[world["support"]], "started", "joined", "ended", "handed_over",
                    "requests", "queue_wait_seconds", "breaches") == (5, 4, 4, 1, 2, 300, 1)
    assert _figures(by[world["ops"]], "started", "handed_over", "requests", "breaches") == (
        2, 0, 1, 1)
    # A team's days: Ops is Bob's team and its queue.
    ops = {row["day"]: row for row in (await _get(
        client, world["admin"], f"daily?{RANGE}&team_id={world['ops']}"))["rows"]}
    assert [ops[day]["started"] for day in sorted(ops)] == [1, 0, 1]
    assert [ops[day]["requests"] for day in sorted(ops)] == [0, 0, 1]
    # One technician's days.
    mine = (await _get(client, world["admin"], f"daily?{RANGE}&technician_id={alice.id}"))
    assert [row["started"] for row in mine["rows"]] == [0, 3, 0]
    assert [row["handed_over"] for row in mine["rows"]] == [1, 0, 0]


async def test_technicians_read_only_their_own_figures(client: TestClient,
                                                       world: dict[str, Any]) -> None:
    bob, alice = world["bob"], world["alice"]
    own = (await _get(client, bob, f"daily?{RANGE}"))
    assert own["technician_id"] == bob.technician.id
    assert [row["started"] for row in own["rows"]] == [1, 0, 1]
    assert [row["handed_over"] for row in own["rows"]] == [0, 0, 0]  # Alice handed over
    assert [row["breaches"] for row in own["rows"]] == [0, 0, 1]
    rows = (await _get(client, bob, f"technicians?{RANGE}"))["rows"]
    assert [row["technician_id"] for row in rows] == [bob.technician.id]
    for path in (f"daily?technician_id={alice.technician.id}",
                 f"technicians?technician_id={alice.technician.id}",
                 f"daily?team_id={world['support']}", "teams", "teams?format=csv"):
        assert (await _get(client, bob, path, 403))["error"] == "forbidden", path
    no_one = await client.get("/api/v1/reports/daily")
    assert no_one.status == 401


@pytest.mark.parametrize(("query", "code"), [
    ("from=2026-10-27&to=2026-10-26", "invalid_range"),
    ("from=2025-01-01&to=2026-10-26", "invalid_range"),
    ("from=0001-01-01&to=0001-01-02", "invalid_range"),
    ("to=9999-12-31", "invalid_range"),
    ("to=0001-01-01", "invalid_range"),
    ("from=yesterday", "invalid_time"),
    ("from=2026-10-01T00:00", "invalid_time"),
    ("tz=Mars/Olympus", "invalid_time_zone"),
    ("team_id=x", "invalid_input"),
    ("format=xml", "invalid_input"),
])
async def test_bad_queries(client: TestClient, tech: Tech, query: str, code: str) -> None:
    body = await _get(client, tech, f"daily?{query}", 400)
    assert body["error"] == code


async def test_csv(client: TestClient, world: dict[str, Any]) -> None:
    response = await client.get(f"/api/v1/reports/teams?{RANGE}&format=csv",
                                headers=world["admin"].auth)
    assert response.status == 200
    assert response.content_type == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="report-teams-2026-10-24-2026-10-26.csv"')
    text = await response.text()
    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["team_id", "team", "started", "joined", "ended", "join_seconds",
                       "first_response_seconds", "handling_seconds", "surveys", "rating",
                       "solved_share", "closings", "resolved_share", "handed_over", "requests",
                       "queue_wait_seconds", "breaches"]
    # A name that a spreadsheet would take for a formula is quoted as text.
    assert rows[1][:5] == [str(world["ops"]), "'=Ops", "2", "1", "1"]
    assert rows[1][5:] == ["30.0", "", "", "0", "", "", "0", "", "0", "1", "", "1"]
    daily = await client.get(f"/api/v1/reports/daily?{RANGE}&format=csv",
                             headers=world["admin"].auth)
    lines = (await daily.text()).splitlines()
    assert lines[0].startswith("day,started,")
    assert [line.split(",")[0] for line in lines[1:]] == [
        "2026-10-24", "2026-10-25", "2026-10-26"]


async def test_days_are_counted_as_the_zone_counts_them(broker: Broker) -> None:
    """The database's day number of every half hour of 13 months against zoneinfo's local
    date, in zones with summer time north and south, a half-hour offset, and none."""
    moments = sa.Table("report_moments", sa.MetaData(),
                       sa.Column("id", sa.Integer, primary_key=True),
                       sa.Column("at", sa.Float, nullable=False))
    async with broker.engine.begin() as conn:
        await conn.run_sync(moments.create)
    for name in ("Europe/Berlin", "America/New_York", "Australia/Adelaide", "UTC"):
        days = Days(zone(name), date(2026, 1, 1), date(2027, 1, 31))
        times = [days.since + n * 1800.0 for n in range(int((days.until - days.since) // 1800))]
        async with broker.engine.begin() as conn:
            await conn.execute(moments.delete())
            await conn.execute(moments.insert(), [{"id": n, "at": t}
                                                  for n, t in enumerate(times)])
            found = (await conn.execute(sa.select(days.number(moments.c.at))
                                        .order_by(moments.c.id))).scalars().all()
        expected = [(datetime.fromtimestamp(t, days.zone).date() - date(1970, 1, 1)).days
                    for t in times]
        assert found == expected, name
        assert days.dates()[-1] == days.first + timedelta(days=len(days.dates()) - 1)
