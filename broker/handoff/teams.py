"""Teams of technicians; each team has a queue of sessions waiting for a member."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..audit import Action, AuditService
from ..clock import Clock
from ..errors import Conflict, InvalidInput, NotFound
from ..schema import team_members, teams
from .model import Team


class TeamStore:
    """Teams and their members; every change is in the audit log."""

    def __init__(self, engine: AsyncEngine, clock: Clock, audit: AuditService) -> None:
        self._engine = engine
        self._clock = clock
        self._audit = audit

    async def create(self, name: str) -> Team:
        name = " ".join(name.split())
        if not 0 < len(name) <= 100:
            raise InvalidInput("A team name has 1 to 100 characters.")
        taken = Conflict(f"A team called {name!r} exists.", code="team_exists")
        try:
            async with self._engine.begin() as conn:
                # Compared here, as `by_name` does: SQLite's lower() folds ASCII only.
                names = (await conn.scalars(sa.select(teams.c.name))).all()
                if name.lower() in {existing.lower() for existing in names}:
                    raise taken
                result = await conn.execute(teams.insert().values(
                    name=name, created_at=self._clock.now()))
                (team_id,) = result.inserted_primary_key or (0,)
        except sa.exc.IntegrityError as exc:  # the same name, created at the same moment
            raise taken from exc
        await self._audit.record(Action.TEAM_CREATED, details={
            "team": {"id": int(team_id), "name": name}})
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
        leads: dict[int, list[int]] = {}
        for member in members:
            by_team.setdefault(member.team_id, []).append(member.technician_id)
            if member.lead:
                leads.setdefault(member.team_id, []).append(member.technician_id)
        return [Team(row.id, row.name, tuple(sorted(by_team.get(row.id, []))), row.message_email,
                     tuple(sorted(leads.get(row.id, []))))
                for row in rows]

    async def led_by(self, technician_id: int) -> list[Team]:
        """The teams the technician leads."""
        return [team for team in await self.all() if technician_id in team.lead_ids]

    async def set_lead(self, team_id: int, technician_id: int, lead: bool) -> Team:
        """Make a member the team's lead, or no longer; a change is in the audit log."""
        team = await self.get(team_id)
        if technician_id not in team.member_ids:
            raise Conflict("Only a member of the team can lead it.", code="not_a_member")
        if (technician_id in team.lead_ids) != lead:
            async with self._engine.begin() as conn:
                await conn.execute(team_members.update().where(
                    team_members.c.team_id == team_id,
                    team_members.c.technician_id == technician_id).values(lead=lead))
            await self._audit.record(Action.TEAM_LEAD_CHANGED, details={
                "team": {"id": team.id, "name": team.name}, "technician_id": technician_id,
                "lead": lead})
        return await self.get(team_id)

    async def of(self, technician_id: int) -> list[Team]:
        return [team for team in await self.all() if technician_id in team.member_ids]

    async def set_message_email(self, team_id: int, address: str | None) -> Team:
        """Where the team's messages go while nobody of it is online (None: nowhere; they
        wait in the list). `address` is checked by the caller."""
        await self.get(team_id)
        async with self._engine.begin() as conn:
            await conn.execute(teams.update().where(teams.c.id == team_id).values(
                message_email=address))
        team = await self.get(team_id)
        await self._audit.record(Action.TEAM_CHANGED, details={
            "team": {"id": team.id, "name": team.name}, "message_email": address})
        return team

    async def add_member(self, team_id: int, technician_id: int) -> Team:
        team = await self.get(team_id)
        if technician_id not in team.member_ids:
            async with self._engine.begin() as conn:
                await conn.execute(team_members.insert().values(
                    team_id=team_id, technician_id=technician_id))
            await self._audit.record(Action.TEAM_MEMBER_ADDED, details={
                "team": {"id": team.id, "name": team.name}, "technician_id": technician_id})
        return await self.get(team_id)

    async def remove_member(self, team_id: int, technician_id: int) -> Team:
        async with self._engine.begin() as conn:
            removed = (await conn.execute(team_members.delete().where(
                team_members.c.team_id == team_id,
                team_members.c.technician_id == technician_id))).rowcount
        team = await self.get(team_id)
        if removed:
            await self._audit.record(Action.TEAM_MEMBER_REMOVED, details={
                "team": {"id": team.id, "name": team.name}, "technician_id": technician_id})
        return team
