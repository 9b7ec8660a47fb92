"""Issue, look up, consume and revoke support keys. Only keyed hashes reach the database."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import KEY_EXPIRED, KEY_REVOKED, KEY_UNKNOWN, KEY_USED, KeyRejected
from ..hashing import Hasher, Sealer
from ..schema import support_keys
from .codes import CODE_DIGITS, generate_code, generate_token

# The statements of the key path, built once: SQLAlchemy then neither builds them nor
# computes their cache keys again on every request.
_LIVE_WITH_CODE = sa.select(sa.func.count()).select_from(support_keys).where(
    support_keys.c.code_hash == sa.bindparam("code_hash"),
    support_keys.c.used_at.is_(None),
    support_keys.c.revoked_at.is_(None),
    support_keys.c.expires_at > sa.bindparam("now"))
_INSERT = support_keys.insert()
# The newest key with this code is the one a person means; older ones are dead.
_BY_CODE = sa.select(support_keys).where(
    support_keys.c.code_hash == sa.bindparam("digest")).order_by(
    support_keys.c.id.desc()).limit(1)
_BY_TOKEN = sa.select(support_keys).where(
    support_keys.c.token_hash == sa.bindparam("digest")).order_by(
    support_keys.c.id.desc()).limit(1)
_CONSUME = support_keys.update().where(
    support_keys.c.id == sa.bindparam("key_id"),
    support_keys.c.used_at.is_(None),
    support_keys.c.revoked_at.is_(None),
    support_keys.c.expires_at > sa.bindparam("now"),
).values(used_at=sa.bindparam("used_at"), sealed=None)


@dataclasses.dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key as handed to the technician, once: the plain code and token are never stored."""

    session_id: str
    code: str
    token: str
    expires_at: float

    def __post_init__(self) -> None:
        if len(self.code) != CODE_DIGITS or not self.code.isdigit():
            raise ValueError("a support code has nine digits")


@dataclasses.dataclass(frozen=True, slots=True)
class KeyRecord:
    id: int
    session_id: str
    expires_at: float
    used_at: float | None
    revoked_at: float | None

    def rejection(self, now: float) -> KeyRejected | None:
        """Why this key cannot be redeemed at `now`, or None if it can."""
        if self.revoked_at is not None:
            return KeyRejected("This support key was withdrawn.", code=KEY_REVOKED)
        if self.used_at is not None:
            return KeyRejected("This support key has already been used.", code=KEY_USED)
        if now >= self.expires_at:
            return KeyRejected("This support key has expired.", code=KEY_EXPIRED)
        return None


def _record(row: Any) -> KeyRecord:
    return KeyRecord(row.id, row.session_id, row.expires_at, row.used_at, row.revoked_at)


class KeyStore:
    """Support keys in the database. Callers pass the connection so keys change with sessions."""

    def __init__(self, hasher: Hasher, sealer: Sealer) -> None:
        self._hasher = hasher
        self._sealer = sealer

    async def issue(self, conn: AsyncConnection, session_id: str, now: float,
                    lifetime: float) -> IssuedKey:
        # A code may repeat an old, dead key's code; it must not repeat a live one.
        for _ in range(20):
            code = generate_code()
            code_hash = self._hasher.hash("code", code)
            live = await conn.scalar(_LIVE_WITH_CODE, {"code_hash": code_hash, "now": now})
            if not live:
                break
        else:  # pragma: no cover - needs ~10^8 live keys
            raise RuntimeError("could not find a free support code")
        token = generate_token()
        await conn.execute(_INSERT, {
            "session_id": session_id, "code_hash": code_hash,
            "token_hash": self._hasher.hash("token", token),
            "sealed": self._sealer.seal(json.dumps([code, token]), session_id),
            "created_at": now, "expires_at": now + lifetime})
        return IssuedKey(session_id, code, token, now + lifetime)

    async def find(self, conn: AsyncConnection, *, code: str | None = None,
                   token: str | None = None) -> KeyRecord:
        if code is not None:
            query, digest = _BY_CODE, self._hasher.hash("code", code)
        elif token is not None:
            query, digest = _BY_TOKEN, self._hasher.hash("token", token)
        else:
            raise ValueError("find needs a code or a token")
        row = (await conn.execute(query, {"digest": digest})).first()
        if row is None:
            raise KeyRejected("No support key matches.", code=KEY_UNKNOWN)
        return _record(row)

    async def consume(self, conn: AsyncConnection, key: KeyRecord, now: float) -> None:
        """Mark the key used. Of two concurrent callers exactly one succeeds."""
        rejection = key.rejection(now)
        if rejection is not None:
            raise rejection
        result = await conn.execute(_CONSUME, {"key_id": key.id, "now": now, "used_at": now})
        if result.rowcount != 1:
            fresh = await self.find_by_id(conn, key.id)
            raise fresh.rejection(now) or KeyRejected(code=KEY_USED)

    async def find_by_id(self, conn: AsyncConnection, key_id: int) -> KeyRecord:
        row = (await conn.execute(sa.select(support_keys).where(support_keys.c.id == key_id))).one()
        return _record(row)

    async def revoke(self, conn: AsyncConnection, session_id: str, now: float) -> bool:
        """Withdraw a live key; False if it was no longer live."""
        result = await conn.execute(
            support_keys.update().where(
                support_keys.c.session_id == session_id,
                support_keys.c.used_at.is_(None),
                support_keys.c.revoked_at.is_(None),
                support_keys.c.expires_at > now,
            ).values(revoked_at=now, sealed=None))
        return bool(result.rowcount)

    async def retire(self, conn: AsyncConnection, session_id: str, now: float) -> None:
        """The session ended: a still-live key is revoked, and no sealed copy remains."""
        await self.revoke(conn, session_id, now)
        await conn.execute(support_keys.update().where(
            support_keys.c.session_id == session_id).values(sealed=None))

    async def reveal(self, conn: AsyncConnection, session_id: str, now: float) -> IssuedKey:
        """The live key of a session in plain, for sending it; KeyRejected if it is not live."""
        row = (await conn.execute(
            sa.select(support_keys).where(support_keys.c.session_id == session_id))).first()
        if row is None:
            raise KeyRejected("This session has no key.", code=KEY_UNKNOWN)
        record = _record(row)
        rejection = record.rejection(now)
        if rejection is not None:
            raise rejection
        if row.sealed is None:
            raise KeyRejected("The key can no longer be sent.", code=KEY_REVOKED)
        code, token = json.loads(self._sealer.open(row.sealed, session_id))
        return IssuedKey(session_id, code, token, row.expires_at)
