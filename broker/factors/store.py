"""The second factors' rows. Using a code is one conditional UPDATE, so that two nodes
(or two tabs) handed the same code at once cannot both succeed."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..clock import Clock
from ..errors import Conflict
from ..schema import (
    factor_challenges,
    factor_passkeys,
    factor_policy,
    factor_recovery_codes,
    factor_totp,
)
from .model import FactorStatus, Passkey, Requirement


@dataclasses.dataclass(frozen=True, slots=True)
class PasskeyRow:
    id: int
    technician_id: int
    public_key: bytes
    sign_count: int


@dataclasses.dataclass(frozen=True, slots=True)
class TotpRow:
    sealed_secret: str
    confirmed: bool
    last_step: int


class FactorStore:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    # -- the policy ---------------------------------------------------------------------

    async def requirement(self) -> Requirement:
        async with self._engine.connect() as conn:
            value = await conn.scalar(sa.select(factor_policy.c.required).where(
                factor_policy.c.id == 1))
        return Requirement(value) if value in set(Requirement) else Requirement.OFF

    async def set_requirement(self, requirement: Requirement, by: int) -> None:
        values = {"required": requirement.value, "updated_at": self._clock.now(),
                  "updated_by": by}
        async with self._engine.begin() as conn:
            changed = await conn.execute(factor_policy.update().where(
                factor_policy.c.id == 1).values(**values))
            if changed.rowcount == 0:
                await conn.execute(factor_policy.insert().values(id=1, **values))

    # -- what a technician has ----------------------------------------------------------

    async def status(self, technician_id: int) -> FactorStatus:
        async with self._engine.connect() as conn:
            totp = await conn.scalar(sa.select(factor_totp.c.technician_id).where(
                factor_totp.c.technician_id == technician_id,
                factor_totp.c.confirmed_at.is_not(None)))
            left = await conn.scalar(sa.select(sa.func.count()).where(
                factor_recovery_codes.c.technician_id == technician_id,
                factor_recovery_codes.c.used_at.is_(None)))
            rows = (await conn.execute(sa.select(
                factor_passkeys.c.id, factor_passkeys.c.name, factor_passkeys.c.created_at,
                factor_passkeys.c.last_used_at).where(
                factor_passkeys.c.technician_id == technician_id)
                .order_by(factor_passkeys.c.id))).all()
        return FactorStatus(totp is not None, int(left or 0),
                            tuple(Passkey(r.id, r.name, r.created_at, r.last_used_at)
                                  for r in rows))

    async def with_factors(self) -> set[int]:
        """The technicians who have a second factor (for the admins' roster)."""
        async with self._engine.connect() as conn:
            rows = await conn.scalars(sa.union(
                sa.select(factor_totp.c.technician_id).where(
                    factor_totp.c.confirmed_at.is_not(None)),
                sa.select(factor_passkeys.c.technician_id)))
            return {int(row) for row in rows}

    # -- the authenticator app ----------------------------------------------------------

    async def totp(self, technician_id: int) -> TotpRow | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(factor_totp).where(
                factor_totp.c.technician_id == technician_id))).first()
        if row is None:
            return None
        return TotpRow(row.secret, row.confirmed_at is not None, int(row.last_step))

    async def put_pending_totp(self, technician_id: int, sealed_secret: str) -> None:
        """A new unconfirmed secret; an enrolled app must be removed first."""
        async with self._engine.begin() as conn:
            confirmed = await conn.scalar(sa.select(factor_totp.c.confirmed_at).where(
                factor_totp.c.technician_id == technician_id))
            if confirmed is not None:
                raise Conflict("An authenticator app is set up already; remove it first.",
                               code="totp_exists")
            await conn.execute(factor_totp.delete().where(
                factor_totp.c.technician_id == technician_id))
            await conn.execute(factor_totp.insert().values(
                technician_id=technician_id, secret=sealed_secret,
                created_at=self._clock.now(), last_step=0))

    async def confirm_totp(self, technician_id: int, step: int,
                           recovery_hashes: list[str]) -> bool:
        """Confirm the pending secret with the step of its first code, and store new
        recovery codes if any are given; False if there was no pending secret."""
        async with self._engine.begin() as conn:
            done = await conn.execute(factor_totp.update().where(
                factor_totp.c.technician_id == technician_id,
                factor_totp.c.confirmed_at.is_(None), factor_totp.c.last_step < step).values(
                confirmed_at=self._clock.now(), last_step=step))
            if done.rowcount != 1:
                return False
            if recovery_hashes:
                await self._replace_recovery(conn, technician_id, recovery_hashes)
        return True

    async def use_step(self, technician_id: int, step: int) -> bool:
        """Take `step` as used; False if it (or a later one) was used already."""
        async with self._engine.begin() as conn:
            done = await conn.execute(factor_totp.update().where(
                factor_totp.c.technician_id == technician_id,
                factor_totp.c.confirmed_at.is_not(None),
                factor_totp.c.last_step < step).values(last_step=step))
        return done.rowcount == 1

    async def remove_totp(self, technician_id: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(factor_totp.delete().where(
                factor_totp.c.technician_id == technician_id))
            await self._drop_orphan_recovery(conn, technician_id)

    # -- recovery codes -----------------------------------------------------------------

    async def replace_recovery(self, technician_id: int, hashes: list[str]) -> None:
        async with self._engine.begin() as conn:
            await self._replace_recovery(conn, technician_id, hashes)

    async def _replace_recovery(self, conn: AsyncConnection, technician_id: int,
                                hashes: list[str]) -> None:
        await conn.execute(factor_recovery_codes.delete().where(
            factor_recovery_codes.c.technician_id == technician_id))
        now = self._clock.now()
        await conn.execute(factor_recovery_codes.insert(), [
            {"technician_id": technician_id, "code_hash": h, "created_at": now}
            for h in hashes])

    async def use_recovery(self, technician_id: int, code_hash: str) -> bool:
        async with self._engine.begin() as conn:
            done = await conn.execute(factor_recovery_codes.update().where(
                factor_recovery_codes.c.technician_id == technician_id,
                factor_recovery_codes.c.code_hash == code_hash,
                factor_recovery_codes.c.used_at.is_(None)).values(used_at=self._clock.now()))
        return done.rowcount == 1

    async def _drop_orphan_recovery(self, conn: AsyncConnection, technician_id: int) -> None:
        """Recovery codes stand in for a factor: without any factor they go too."""
        passkey = await conn.scalar(sa.select(factor_passkeys.c.id).where(
            factor_passkeys.c.technician_id == technician_id).limit(1))
        totp = await conn.scalar(sa.select(factor_totp.c.technician_id).where(
            factor_totp.c.technician_id == technician_id,
            factor_totp.c.confirmed_at.is_not(None)))
        if passkey is None and totp is None:
            await conn.execute(factor_recovery_codes.delete().where(
                factor_recovery_codes.c.technician_id == technician_id))

    # -- passkeys and their ceremonies' challenges --------------------------------------

    async def add_challenge(self, challenge_hash: str, purpose: str,
                            technician_id: int | None, lifetime: float) -> None:
        now = self._clock.now()
        async with self._engine.begin() as conn:
            await conn.execute(factor_challenges.delete().where(
                factor_challenges.c.expires_at <= now))
            await conn.execute(factor_challenges.insert().values(
                challenge_hash=challenge_hash, purpose=purpose, technician_id=technician_id,
                expires_at=now + lifetime))

    async def take_challenge(self, challenge_hash: str, purpose: str,
                             technician_id: int | None) -> bool:
        """Use up a live challenge handed out for this purpose and technician (None:
        for a sign-in without one)."""
        owner = (factor_challenges.c.technician_id.is_(None) if technician_id is None
                 else factor_challenges.c.technician_id == technician_id)
        async with self._engine.begin() as conn:
            done = await conn.execute(factor_challenges.delete().where(
                factor_challenges.c.challenge_hash == challenge_hash,
                factor_challenges.c.purpose == purpose, owner,
                factor_challenges.c.expires_at > self._clock.now()))
        return done.rowcount == 1

    async def credential_ids(self, technician_id: int) -> list[str]:
        async with self._engine.connect() as conn:
            return list((await conn.scalars(sa.select(factor_passkeys.c.credential_id).where(
                factor_passkeys.c.technician_id == technician_id))).all())

    async def passkey(self, credential_id: str) -> PasskeyRow | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(factor_passkeys).where(
                factor_passkeys.c.credential_id == credential_id))).first()
        if row is None:
            return None
        return PasskeyRow(row.id, row.technician_id, bytes(row.public_key),
                          int(row.sign_count))

    async def add_passkey(self, technician_id: int, credential_id: str, public_key: bytes,
                          sign_count: int, name: str, recovery_hashes: list[str]) -> bool:
        """False if the credential is registered already."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(factor_passkeys.insert().values(
                    technician_id=technician_id, credential_id=credential_id,
                    public_key=public_key, sign_count=sign_count, name=name,
                    created_at=self._clock.now()))
                if recovery_hashes:
                    await self._replace_recovery(conn, technician_id, recovery_hashes)
        except sa.exc.IntegrityError:
            return False
        return True

    async def use_passkey(self, passkey_id: int, old_count: int, new_count: int) -> bool:
        """Note a use; False if another use of it came first."""
        async with self._engine.begin() as conn:
            done = await conn.execute(factor_passkeys.update().where(
                factor_passkeys.c.id == passkey_id,
                factor_passkeys.c.sign_count == old_count).values(
                sign_count=new_count, last_used_at=self._clock.now()))
        return done.rowcount == 1

    async def remove_passkey(self, technician_id: int, passkey_id: int) -> str | None:
        """Remove one of the technician's passkeys; its name, or None if it is not theirs."""
        async with self._engine.begin() as conn:
            name = await conn.scalar(sa.select(factor_passkeys.c.name).where(
                factor_passkeys.c.id == passkey_id,
                factor_passkeys.c.technician_id == technician_id))
            if name is None:
                return None
            await conn.execute(factor_passkeys.delete().where(
                factor_passkeys.c.id == passkey_id))
            await self._drop_orphan_recovery(conn, technician_id)
        return str(name)

    # -- all of them ----------------------------------------------------------------------

    async def reset(self, conn: AsyncConnection, technician_id: int) -> None:
        """Remove every factor of a technician, in the caller's transaction."""
        for table in (factor_totp, factor_recovery_codes, factor_passkeys, factor_challenges):
            await conn.execute(table.delete().where(table.c.technician_id == technician_id))
