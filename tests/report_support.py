"""Rows for reports, written straight into the tables (tests/test_reports.py, the
reports page's Chromium test and python -m tests.screenshots)."""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from broker.core import Broker
from broker.schema import (
    events,
    handoffs,
    intake_requests,
    sessions,
    support_keys,
    survey_responses,
)


def at(text: str | float) -> float:
    """A UTC time: "2026-10-24T22:30" (or seconds since the epoch, as they are)."""
    if isinstance(text, float | int):
        return float(text)
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


class Seed:
    """Rows written straight into the tables: sessions with their keys, chat lines,
    handovers, customers' requests and surveys, at chosen times."""

    def __init__(self, broker: Broker) -> None:
        self.engine = broker.engine

    async def insert(self, table: sa.Table, **values: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(table.insert().values(**values))

    async def session(self, owner: int | None, created: str | float, *, used: float | None = None,
                      started: float | None = None, ended: float | None = None,
                      first_line: float | None = None, survey: tuple[int, bool] | None = None,
                      key: bool = True) -> str:
        """Times after `created` in seconds; `used` is when the key was used (the end user
        then joined, unless `started` says otherwise)."""
        sid = secrets.token_hex(8)
        t0 = at(created)
        started = used if started is None else started
        await self.insert(sessions, id=sid, technician_id=owner,
                          state="ended" if ended is not None else "active", created_at=t0,
                          started_at=None if started is None else t0 + started,
                          ended_at=None if ended is None else t0 + ended)
        if key:
            await self.insert(support_keys, session_id=sid, code_hash=secrets.token_hex(8),
                              token_hash=secrets.token_hex(8), created_at=t0,
                              expires_at=t0 + 900, used_at=None if used is None else t0 + used)
        if started is not None:  # the end user's line comes first: not a response
            await self.insert(events, session_id=sid, seq=1, type="message", sender="p1",
                              body="{}", created_at=t0 + started + 1)
        if first_line is not None:
            await self.insert(events, session_id=sid, seq=2, type="message",
                              sender=f"t{owner}", body="{}", created_at=t0 + first_line)
            await self.insert(events, session_id=sid, seq=3, type="message",
                              sender=f"t{owner}", body="{}", created_at=t0 + first_line + 50)
        if survey is not None:
            await self.insert(survey_responses, session_id=sid, participant_id=1,
                              rating=survey[0], solved=survey[1], language="en",
                              submitted_at=t0 + (ended or 0) + 10)
        return sid

    async def handoff(self, sid: str, giver: int | None, taker: int | None, created: float,
                      *, state: str = "accepted", team: int | None = None) -> str:
        hid = secrets.token_hex(8)
        await self.insert(handoffs, id=hid, session_id=sid, from_technician_id=giver,
                          to_technician_id=None if team else taker, to_team_id=team,
                          note="", keep_sender=False, state=state, created_at=created,
                          decided_at=created + 300 if state == "accepted" else None,
                          decided_by=taker if state == "accepted" else None)
        return hid

    async def request(self, team: int, created: str | float, *, sid: str | None = None,
                      handoff: str | None = None, breached: bool = False,
                      answered_by: int | None = None) -> None:
        t0 = at(created)
        await self.insert(intake_requests, id=secrets.token_hex(8),
                          kind="chat" if sid else "message", team_id=team, session_id=sid,
                          handoff_id=handoff, severity="standard", name="Customer",
                          description="help", fields="{}", language="en", created_at=t0,
                          due_at=t0 + 600, alert_at=t0 + 480, target_seconds=600,
                          business_hours=False, breached_at=t0 + 600 if breached else None,
                          answered_by=answered_by,
                          answered_at=t0 + 700 if answered_by else None)


async def fortnight(broker: Broker, now: float, technicians: list[int], team: int) -> int:
    """Two weeks up to `now` of sessions (some with surveys), handovers and customers'
    requests to `team`, the same every time; the number of sessions."""
    rng = random.Random(19)
    seed = Seed(broker)
    count = 0
    for day in range(14, -1, -1):
        for _ in range(rng.randint(3, 9)):
            created = now - day * 86400 - rng.uniform(600, 30000)
            owner = rng.choice(technicians)
            used = rng.uniform(20, 240) if rng.random() < 0.9 else None
            ended = None if used is None else used + rng.uniform(300, 2400)
            sid = await seed.session(
                owner, created, used=used, ended=ended if day or rng.random() < 0.5 else None,
                first_line=None if used is None else used + rng.uniform(10, 120),
                survey=(rng.randint(2, 5), rng.random() < 0.75)
                if ended and rng.random() < 0.5 else None)
            count += 1
            if rng.random() < 0.15:
                await seed.handoff(sid, owner, rng.choice(technicians), created + 200)
        for _ in range(rng.randint(0, 3)):
            created = now - day * 86400 - rng.uniform(600, 30000)
            taker = rng.choice(technicians)
            sid = await seed.session(taker, created, started=0, first_line=rng.uniform(60, 900),
                                     ended=1500, key=False)
            count += 1
            await seed.request(team, created, sid=sid, breached=rng.random() < 0.3,
                               handoff=await seed.handoff(sid, None, taker, created, team=team))
    return count
