"""Technician accounts, their passwords and their API tokens."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .clock import Clock
from .db import api_tokens, technicians
from .errors import Conflict, InvalidInput, NotFound, Unauthenticated
from .hashing import Hasher, hash_password, verify_password

_TOKEN_CACHE_SECONDS = 30.0
_TOKEN_CACHE_SIZE = 10_000
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
# Verifying against this keeps a login for an unknown email as slow as one for a known email.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


@dataclasses.dataclass(frozen=True, slots=True)
class Technician:
    id: int
    email: str
    display_name: str
    is_admin: bool


def _from_row(row: sa.Row[tuple[object, ...]]) -> Technician:
    return Technician(row.id, row.email, row.display_name, row.is_admin)


class TechnicianStore:
    def __init__(self, engine: AsyncEngine, hasher: Hasher, clock: Clock) -> None:
        self._engine = engine
        self._hasher = hasher
        self._clock = clock
        self._token_cache: dict[str, tuple[Technician, float]] = {}

    async def add(self, email: str, display_name: str, password: str, *,
                  is_admin: bool = False) -> Technician:
        email = email.strip().lower()
        display_name = display_name.strip()
        if not _EMAIL_RE.match(email) or len(email) > 320:
            raise InvalidInput(f"{email!r} is not an email address")
        if not display_name or len(display_name) > 200:
            raise InvalidInput("a display name of 1 to 200 characters is required")
        if len(password) < 8:
            raise InvalidInput("the password must have at least 8 characters")
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self._engine.begin() as conn:
            if await conn.scalar(sa.select(technicians.c.id).where(technicians.c.email == email)):
                raise Conflict(f"a technician with email {email} exists", code="email_taken")
            result = await conn.execute(technicians.insert().values(
                email=email, display_name=display_name, password_hash=password_hash,
                is_admin=is_admin, created_at=self._clock.now()))
            (new_id,) = result.inserted_primary_key or (None,)
        return Technician(int(new_id), email, display_name, is_admin)  # type: ignore[arg-type]

    async def all(self) -> list[Technician]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(technicians).order_by(technicians.c.id))).all()
        return [_from_row(row) for row in rows]

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            return int(await conn.scalar(sa.select(sa.func.count()).select_from(technicians)) or 0)

    async def get(self, technician_id: int) -> Technician:
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                sa.select(technicians).where(technicians.c.id == technician_id))).first()
        if row is None:
            raise NotFound("No such technician.")
        return _from_row(row)

    async def _row_by_email(self, email: str) -> sa.Row[tuple[object, ...]] | None:
        async with self._engine.connect() as conn:
            return (await conn.execute(sa.select(technicians).where(
                technicians.c.email == email.strip().lower()))).first()

    async def by_email(self, email: str) -> Technician:
        row = await self._row_by_email(email)
        if row is None:
            raise NotFound(f"No technician with email {email}.")
        return _from_row(row)

    async def login(self, email: str, password: str) -> Technician:
        row = await self._row_by_email(email)
        stored = row.password_hash if row is not None else _DUMMY_HASH
        if not await asyncio.to_thread(verify_password, password, stored) or row is None:
            raise Unauthenticated("Wrong email or password.")
        return _from_row(row)

    async def create_token(self, technician_id: int) -> str:
        token = "sbt_" + secrets.token_urlsafe(32)
        async with self._engine.begin() as conn:
            await conn.execute(api_tokens.insert().values(
                technician_id=technician_id, token_hash=self._hasher.hash("api", token),
                created_at=self._clock.now()))
        return token

    async def by_token(self, token: str) -> Technician:
        token_hash = self._hasher.hash("api", token)
        # Integrations call with the same token many times a second: remember good ones
        # briefly (tokens cannot be changed or withdrawn while cached entries live).
        cached = self._token_cache.get(token_hash)
        if cached is not None and cached[1] > self._clock.now():
            return cached[0]
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                sa.select(technicians).join(api_tokens).where(
                    api_tokens.c.token_hash == token_hash))).first()
        if row is None:
            raise Unauthenticated("Unknown API token.")
        technician = _from_row(row)
        if len(self._token_cache) >= _TOKEN_CACHE_SIZE:
            self._token_cache.clear()
        self._token_cache[token_hash] = (technician, self._clock.now() + _TOKEN_CACHE_SECONDS)
        return technician
