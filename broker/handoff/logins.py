"""Technicians' logins: one row per browser login, so that logging out sticks (a copied
cookie is worthless afterwards) and the number of technicians logged in at once can be
limited to the seats an operator has."""

from __future__ import annotations

import dataclasses
import secrets

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..clock import Clock
from ..db import logins, technicians
from ..errors import Conflict, Forbidden, NotFound

LOGIN_LIFETIME = 12 * 3600.0  # as long as the login cookie lives


@dataclasses.dataclass(frozen=True, slots=True)
class Login:
    id: str
    technician_id: int
    technician_name: str
    created_at: float
    last_seen_at: float


class SeatsTaken(Conflict):
    """Every seat is taken; `logins` are the logins holding them."""

    code = "seats_taken"

    def __init__(self, message: str, logins: list[Login]) -> None:
        super().__init__(message)
        self.logins = logins


class LoginStore:
    def __init__(self, engine: AsyncEngine, clock: Clock, seats: int) -> None:
        self._engine = engine
        self._clock = clock
        self._seats = seats

    def _live(self) -> sa.ColumnElement[bool]:
        return sa.and_(logins.c.ended_at.is_(None),
                       logins.c.created_at > self._clock.now() - LOGIN_LIFETIME)

    async def active(self) -> list[Login]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(
                sa.select(logins, technicians.c.display_name).join(technicians)
                .where(self._live()).order_by(logins.c.created_at))).all()
        return [Login(r.id, r.technician_id, r.display_name, r.created_at, r.last_seen_at)
                for r in rows]

    async def start(self, technician_id: int) -> str:
        """A new login, if a seat is free (a technician already logged in has one)."""
        current = await self.active()
        holders = {login.technician_id for login in current}
        if self._seats and technician_id not in holders and len(holders) >= self._seats:
            raise SeatsTaken(f"All {self._seats} seats are taken.", current)
        login_id = secrets.token_urlsafe(16)
        now = self._clock.now()
        async with self._engine.begin() as conn:
            await conn.execute(logins.insert().values(
                id=login_id, technician_id=technician_id, created_at=now, last_seen_at=now))
        return login_id

    async def check(self, login_id: str) -> int:
        """The technician of a live login; NotFound if it ended or never was."""
        async with self._engine.connect() as conn:
            technician_id = await conn.scalar(sa.select(logins.c.technician_id).where(
                logins.c.id == login_id, self._live()))
        if technician_id is None:
            raise NotFound("This login has ended.")
        return int(technician_id)

    async def end(self, login_id: str, reason: str, *, by_admin: bool = False,
                  technician_id: int | None = None) -> None:
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(logins).where(logins.c.id == login_id))).first()
            if row is None:
                raise NotFound("No such login.")
            if not by_admin and row.technician_id != technician_id:
                raise Forbidden("Only an admin can end another technician's login.")
            await conn.execute(logins.update().where(
                logins.c.id == login_id, logins.c.ended_at.is_(None)).values(
                ended_at=self._clock.now(), ended_reason=reason))

    async def touch(self, technician_ids: frozenset[int]) -> None:
        """Mark these technicians' live logins as seen now (they have a dashboard open)."""
        if not technician_ids:
            return
        async with self._engine.begin() as conn:
            await conn.execute(logins.update().where(
                logins.c.technician_id.in_(technician_ids), self._live()).values(
                last_seen_at=self._clock.now()))

    async def gone_since(self, technician_id: int) -> float | None:
        """Since when a technician who uses the dashboard has been gone: their last live
        login's last sign of life, or when their last login ended. None for technicians
        who never logged in (API integrations) and for those still logged in and seen."""
        async with self._engine.connect() as conn:
            live = await conn.scalar(sa.select(sa.func.max(logins.c.last_seen_at)).where(
                logins.c.technician_id == technician_id, self._live()))
            if live is not None:
                return float(live)
            ended = await conn.scalar(sa.select(sa.func.max(
                sa.func.coalesce(logins.c.ended_at, logins.c.created_at + LOGIN_LIFETIME)))
                .where(logins.c.technician_id == technician_id))
        return None if ended is None else min(float(ended), self._clock.now())

    async def logged_out(self, technician_id: int) -> bool:
        """Has logins, none of them live: the technician logged out (or every login expired)."""
        async with self._engine.connect() as conn:
            any_login = await conn.scalar(sa.select(logins.c.id).where(
                logins.c.technician_id == technician_id).limit(1))
            live = await conn.scalar(sa.select(logins.c.id).where(
                logins.c.technician_id == technician_id, self._live()).limit(1))
        return any_login is not None and live is None
