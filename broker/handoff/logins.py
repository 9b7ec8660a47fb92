"""Technicians' logins: one row per browser login, so that logging out sticks (a copied
cookie is worthless afterwards) and the number of technicians logged in at once can be
limited to the seats an operator has. A login that ends is announced on the technicians
topic, so that every node closes the sockets it opened."""

from __future__ import annotations

import dataclasses
import secrets

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..audit import Action, AuditActor, AuditService
from ..bus import EventBus
from ..clock import Clock
from ..errors import Conflict, Forbidden, NotFound
from ..schema import logins, technicians
from ..technicians import TECHNICIANS_TOPIC, Ending, TechnicianChanged

LOGIN_LIFETIME = 12 * 3600.0  # as long as the login cookie lives
# Any fixed number: the PostgreSQL advisory lock that makes logins count seats one at a
# time (broker/db.py's migration lock is another).
_SEATS_LOCK = 0x5B_0B_0B_02


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
    def __init__(self, engine: AsyncEngine, clock: Clock, seats: int, bus: EventBus,
                 audit: AuditService) -> None:
        self._engine = engine
        self._clock = clock
        self._seats = seats
        self._bus = bus
        self._audit = audit

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
        """A new login, if a seat is free (a technician already logged in has one).

        Counting the seats and taking one is one statement, so logins at the same moment
        cannot each see the last seat free. On SQLite that statement holds the database's
        one write lock; on PostgreSQL (where it would not: each statement sees only what
        was committed when it began) logins on every node also take one advisory lock
        first, held until their insert is committed."""
        login_id = secrets.token_urlsafe(16)
        now = self._clock.now()
        row = sa.select(sa.literal(login_id), sa.literal(technician_id), sa.literal(now),
                        sa.literal(now))
        if self._seats:
            live = self._live()
            holders = sa.select(sa.func.count(sa.distinct(logins.c.technician_id))).where(
                live).scalar_subquery()
            holds_one = sa.exists().where(logins.c.technician_id == technician_id, live)
            row = row.where(sa.or_(holders < self._seats, holds_one))
        async with self._engine.begin() as conn:
            if self._seats and conn.dialect.name == "postgresql":
                await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SEATS_LOCK)))
            taken = await conn.execute(logins.insert().from_select(
                ["id", "technician_id", "created_at", "last_seen_at"], row))
            name = await conn.scalar(sa.select(technicians.c.display_name).where(
                technicians.c.id == technician_id))
        if taken.rowcount != 1:
            raise SeatsTaken(f"All {self._seats} seats are taken.", await self.active())
        await self._audit.record(Action.LOGIN,
                                 actor=AuditActor.technician(technician_id, str(name)))
        return login_id

    async def check(self, login_id: str) -> int:
        """The technician of a live login; NotFound if it ended or never was."""
        async with self._engine.connect() as conn:
            technician_id = await conn.scalar(sa.select(logins.c.technician_id).where(
                logins.c.id == login_id, self._live()))
        if technician_id is None:
            raise NotFound("This login has ended.")
        return int(technician_id)

    async def ending(self, login_id: str) -> Ending | None:
        """Why a login ended (EXPIRED when its time ran out); None while it is live."""
        return (await self.endings([login_id]))[login_id]

    async def endings(self, login_ids: list[str]) -> dict[str, Ending | None]:
        """`ending` of many logins, in one query per 500."""
        found: dict[str, Ending | None] = dict.fromkeys(login_ids, Ending.LOGOUT)  # unknown
        expired_before = self._clock.now() - LOGIN_LIFETIME
        async with self._engine.connect() as conn:
            for start in range(0, len(login_ids), 500):
                for row in await conn.execute(sa.select(
                        logins.c.id, logins.c.ended_reason, logins.c.ended_at,
                        logins.c.created_at).where(
                        logins.c.id.in_(login_ids[start:start + 500]))):
                    found[row.id] = (Ending.of(row.ended_reason) if row.ended_at is not None
                                     else Ending.EXPIRED if row.created_at <= expired_before
                                     else None)
        return found

    async def end(self, login_id: str, reason: Ending, *, by_admin: bool = False,
                  technician_id: int | None = None) -> None:
        """End a login: its technician's logout, or an admin's (to take its seat, or in the
        list of logins); each is recorded in the audit log."""
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(logins, technicians.c.display_name)
                                      .join(technicians).where(logins.c.id == login_id))).first()
            if row is None:
                raise NotFound("No such login.")
            if not by_admin and row.technician_id != technician_id:
                raise Forbidden("Only an admin can end another technician's login.")
            ended = await conn.execute(logins.update().where(
                logins.c.id == login_id, logins.c.ended_at.is_(None)).values(
                ended_at=self._clock.now(), ended_reason=reason))
        if ended.rowcount != 1:
            return  # ended before: nothing happened now
        # Every node closes the sockets this login opened.
        self._bus.publish(TECHNICIANS_TOPIC, TechnicianChanged(
            row.technician_id, ending=reason, ended_login=login_id))
        owner = AuditActor.technician(row.technician_id, row.display_name)
        if reason == Ending.LOGOUT:
            await self._audit.record(Action.LOGOUT, actor=owner)
        else:
            await self._audit.record(
                Action.SEAT_TAKEN_OVER if reason == Ending.SEAT_TAKEN else Action.LOGIN_ENDED,
                details={"technician": {"id": row.technician_id, "name": row.display_name},
                         "reason": reason.value})

    async def end_all(self, conn: AsyncConnection, technician_id: int, reason: str, *,
                      keep: str | None = None) -> None:
        """End every live login of a technician but `keep`, in the caller's transaction
        (an account change that ends them commits, or not, with them)."""
        where = [logins.c.technician_id == technician_id, logins.c.ended_at.is_(None)]
        if keep is not None:
            where.append(logins.c.id != keep)
        await conn.execute(logins.update().where(*where).values(
            ended_at=self._clock.now(), ended_reason=reason))

    async def end_expired(self) -> None:
        """End the logins whose time ran out, as of when it ran out, and announce each, so
        that every node closes the sockets it opened (a sweep step: of nodes sweeping at
        once, the database lets one end each login)."""
        async with self._engine.begin() as conn:
            ended = (await conn.execute(logins.update().where(
                logins.c.ended_at.is_(None),
                logins.c.created_at <= self._clock.now() - LOGIN_LIFETIME).values(
                ended_at=logins.c.created_at + LOGIN_LIFETIME, ended_reason=Ending.EXPIRED)
                .returning(logins.c.id, logins.c.technician_id))).all()
        for login_id, technician_id in ended:
            self._bus.publish(TECHNICIANS_TOPIC, TechnicianChanged(
                technician_id, ending=Ending.EXPIRED, ended_login=login_id))

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
