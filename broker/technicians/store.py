"""Technician accounts and their passwords; their API tokens (`tokens`, tokens.py)."""

from __future__ import annotations

import asyncio
import re
import secrets

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..audit import ANONYMOUS, Action, AuditActor, AuditService
from ..clock import Clock
from ..errors import Conflict, InvalidInput, NotFound, Unauthenticated
from ..hashing import Hasher, hash_password, verify_password
from ..schema import technicians
from .model import AccountDisabled, PasswordChangeRequired, Technician, from_row, named
from .tokens import ALL_SCOPES, Scope, TokenStore

__all__ = ["AccountDisabled", "PasswordChangeRequired", "Technician", "TechnicianStore",
           "from_row"]
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
MIN_PASSWORD = 8
# Verifying against this keeps a login for an unknown email as slow as one for a known email.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def check_display_name(display_name: str) -> str:
    display_name = " ".join(display_name.split())
    if not display_name or len(display_name) > 200:
        raise InvalidInput("A display name of 1 to 200 characters is required.")
    return display_name


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"A password has at least {MIN_PASSWORD} characters.",
                           code="password_too_short")


async def store_password(conn: AsyncConnection, technician_id: int, password_hash: str, *,
                         must_change: bool) -> None:
    await conn.execute(technicians.update().where(technicians.c.id == technician_id).values(
        password_hash=password_hash, must_change_password=must_change))


class TechnicianStore:
    def __init__(self, engine: AsyncEngine, hasher: Hasher, clock: Clock,
                 audit: AuditService) -> None:
        self._engine = engine
        self._audit = audit
        self._hasher = hasher
        self._clock = clock
        self.tokens = TokenStore(engine, hasher, clock, audit)

    async def add(self, email: str, display_name: str, password: str, *,
                  is_admin: bool = False, must_change_password: bool = False) -> Technician:
        email = email.strip().lower()
        if not _EMAIL_RE.match(email) or len(email) > 320:
            raise InvalidInput(f"{email!r} is not an email address", code="invalid_email")
        display_name = check_display_name(display_name)
        check_password(password)
        password_hash = await asyncio.to_thread(hash_password, password)
        now = self._clock.now()
        async with self._engine.begin() as conn:
            if await conn.scalar(sa.select(technicians.c.id).where(technicians.c.email == email)):
                raise Conflict(f"a technician with email {email} exists", code="email_taken")
            result = await conn.execute(technicians.insert().values(
                email=email, display_name=display_name, password_hash=password_hash,
                is_admin=is_admin, must_change_password=must_change_password, created_at=now))
            (new_id,) = result.inserted_primary_key or (None,)
        technician = Technician(int(new_id), email, display_name,  # type: ignore[arg-type]
                                is_admin, None, must_change_password, now)
        await self._audit.record(Action.TECHNICIAN_CREATED, details={
            "technician": named(technician), "admin": is_admin})
        return technician

    async def all(self) -> list[Technician]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(technicians).order_by(technicians.c.id))).all()
        return [from_row(row) for row in rows]

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            return int(await conn.scalar(sa.select(sa.func.count()).select_from(technicians)) or 0)

    async def get(self, technician_id: int) -> Technician:
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                sa.select(technicians).where(technicians.c.id == technician_id))).first()
        if row is None:
            raise NotFound("No such technician.")
        return from_row(row)

    async def _row_by_email(self, email: str) -> sa.Row[tuple[object, ...]] | None:
        async with self._engine.connect() as conn:
            return (await conn.execute(sa.select(technicians).where(
                technicians.c.email == email.strip().lower()))).first()

    async def by_email(self, email: str) -> Technician:
        row = await self._row_by_email(email)
        if row is None:
            raise NotFound(f"No technician with email {email}.")
        return from_row(row)

    async def login(self, email: str, password: str) -> Technician:
        """The technician with this email and password. A disabled one is told so, but only
        after the password was right (a guesser learns nothing new)."""
        row = await self._row_by_email(email)
        stored = row.password_hash if row is not None else _DUMMY_HASH
        if not await asyncio.to_thread(verify_password, password, stored) or row is None:
            await self._audit.record(Action.LOGIN_FAILED, actor=ANONYMOUS, details={
                "email": email[:320], "reason": "wrong_email_or_password"})
            raise Unauthenticated("Wrong email or password.")
        technician = from_row(row)
        if technician.disabled:
            await self._audit.record(Action.LOGIN_FAILED, actor=ANONYMOUS, details={
                "email": technician.email, "reason": "technician_disabled"})
            raise AccountDisabled("This account is disabled. Ask your administrator.")
        return technician

    async def change_password(self, technician_id: int, current: str, new: str) -> Technician:
        """The technician's own change: the current password (or the one-time password they
        logged in with) proves it is them."""
        check_password(new)
        async with self._engine.connect() as conn:
            stored = await conn.scalar(sa.select(technicians.c.password_hash).where(
                technicians.c.id == technician_id))
        if stored is None:
            raise NotFound("No such technician.")
        if not await asyncio.to_thread(verify_password, current, str(stored)):
            raise InvalidInput("The current password is not right.", code="wrong_password")
        if current == new:
            raise InvalidInput("Choose a password that differs from the current one.",
                               code="password_unchanged")
        new_hash = await asyncio.to_thread(hash_password, new)
        async with self._engine.begin() as conn:
            await store_password(conn, technician_id, new_hash, must_change=False)
        technician = await self.get(technician_id)
        await self._audit.record(Action.PASSWORD_CHANGED, actor=AuditActor.technician(
            technician.id, technician.display_name))
        return technician

    async def set_one_time_password(self, technician_id: int) -> str:
        """A one-time password, to be replaced at the next login (the command line's
        emergency path, also while passwords are turned off for single sign-on)."""
        technician = await self.get(technician_id)
        password = secrets.token_urlsafe(12)
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self._engine.begin() as conn:
            await store_password(conn, technician_id, password_hash, must_change=True)
        await self._audit.record(Action.PASSWORD_RESET, details={
            "technician": named(technician), "one_time": True})
        return password

    async def create_token(self, technician_id: int,
                           scopes: frozenset[Scope] = ALL_SCOPES) -> str:
        """A new API token (by default with every scope)."""
        return (await self.tokens.create(technician_id, scopes))[1]

    async def by_token(self, token: str) -> Technician:
        """The technician of a live API token, whatever its scopes."""
        return (await self.tokens.resolve(token)).technician

    def forget(self, technician_id: int | None = None) -> None:
        """Drop cached tokens of a technician who changed (None: of everybody)."""
        self.tokens.forget(technician_id)

