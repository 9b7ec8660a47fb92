"""Teams of technicians; each team has a queue of sessions waiting for a member."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..clock import Clock
from ..db import team_members, teams
from ..errors import Conflict, InvalidInput, NotFound
from .model import Team


class TeamStore:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def create(self, name: str) -> Team:
        name = " ".join(name.split())
        if not 0 < len(name) <= 100:
            raise InvalidInput("A team name has 1 to 100 characters.")
        async with self._engine.begin() as conn:
            if await conn.scalar(sa.select(teams.c.id).where(
                    sa.func.lower(teams.c.name) == name.lower())):
                raise Conflict(f"A team called {name!r} exists.", code="team_exists")
            result = await conn.execute(teams.insert().values(name=name,
                                                              created_at=self._clock.now()))
            (team_id,) = result.inserted_primary_key or (0,)
        return Team(int(team_id), name)

    async def get(self, team_id: int) -> Team:
        for team in await self.all():
            if team.id == team_id:
                return team
        raise NotFound("No such team.")

    async def by_name(self, name: str) -> Team:
        for team in await self.all():
            if team.name.lower() == name.strip().lower():
                return team
        raise NotFound(f"No team called {name!r}.")

    async def all(self) -> list[Team]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(teams).order_by(teams.c.name))).all()
            members = (await conn.execute(sa.select(team_members))).all()
        by_team: dict[int, list[int]] = {}
        for member in members:
            by_team.setdefault(member.team_id, []).append(member.technician_id)
        return [Team(row.id, row.name, tuple(sorted(by_team.get(row.id, [])))) for row in rows]

    async def of(self, technician_id: int) -> list[Team]:
        return [team for team in await self.all() if technician_id in team.member_ids]

    async def add_member(self, team_id: int, technician_id: int) -> Team:
        team = await self.get(team_id)
        if technician_id not in team.member_ids:
            async with self._engine.begin() as conn:
                await conn.execute(team_members.insert().values(
                    team_id=team_id, technician_id=technician_id))
        return await self.get(team_id)

    async def remove_member(self, team_id: int, technician_id: int) -> Team:
        async with self._engine.begin() as conn:
            await conn.execute(team_members.delete().where(
                team_members.c.team_id == team_id,
                team_members.c.technician_id == technician_id))
        return await self.get(team_id)
