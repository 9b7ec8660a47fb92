"""API tokens: a technician's credential for scripts, limited by scopes and an expiry.

A token never reaches more than its owner could with a browser login; its scopes narrow
that further. Every API route names the one scope it needs (web/scopes.py); a token
without it gets 403 insufficient_scope. `sessions:write` includes `sessions:read`.
Tokens made before scopes existed have all four (migration 0017) until revoked.

Only a hash of the token is stored. Integrations call with the same token many times a
second, so a node remembers a good token for a few seconds (`forget` drops a technician's
on every node through the bus) and writes its last use at most once a minute.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..audit import Action, AuditService
from ..clock import Clock
from ..credentials import Credential
from ..errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from ..hashing import Hasher
from ..schema import api_tokens, technicians
from .model import AccountDisabled, Technician, from_row, named

_CACHE_SECONDS = 30.0
_CACHE_SIZE = 10_000
LAST_USED_EVERY = 60.0  # seconds between two writes of a token's last use (per node)
MAX_NAME = 100


class Scope(enum.Enum):
    """What a token may be used for."""

    SESSIONS_READ = "sessions:read"  # read sessions, transcripts, queues, the roster
    SESSIONS_WRITE = "sessions:write"  # start, chat in, end and hand over sessions
    DELIVERIES = "deliveries"  # send a session's key by SMS or email
    ADMIN = "admin"  # technicians, teams, webhooks, logins, credentials


ALL_SCOPES = frozenset(Scope)


def parse_scopes(names: Iterable[str]) -> frozenset[Scope]:
    """Scopes from their names (each may hold several, comma- or space-separated)."""
    found = set()
    for name in names:
        for part in name.replace(",", " ").split():
            try:
                found.add(Scope(part))
            except ValueError:
                known = ", ".join(s.value for s in Scope)
                raise InvalidInput(f"{part!r} is not a scope (known: {known}).",
                                   code="invalid_scope") from None
    if not found:
        raise InvalidInput("A token needs at least one scope.", code="invalid_scope")
    return frozenset(found)


def scope_text(scopes: Iterable[Scope]) -> str:
    return " ".join(s.value for s in Scope if s in set(scopes))


def parse_expiry(text: str, now: float) -> float:
    """An expiry: a lifetime ("90d", "12h") or an ISO 8601 date or time (UTC unless it
    names an offset; a date means its midnight)."""
    text = text.strip()
    units = {"d": 86_400, "h": 3_600}
    if text[-1:] in units and text[:-1].isascii() and text[:-1].isdigit():
        count = int(text[:-1])
        if not 0 < count <= 3650 * 24:
            raise InvalidInput("A token lives at most ten years.", code="invalid_expiry")
        return now + count * units[text[-1]]
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is no expiry: give a lifetime such as 90d or 12h, or "
                           "a date such as 2027-03-31.", code="invalid_expiry") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def grants(scopes: frozenset[Scope], need: Scope) -> bool:
    return need in scopes or (need is Scope.SESSIONS_READ and Scope.SESSIONS_WRITE in scopes)


class InsufficientScope(Forbidden):
    """The API token lacks the scope this needs."""

    code = "insufficient_scope"

    def __init__(self, need: Scope) -> None:
        super().__init__(f"This API token lacks the scope {need.value!r}.")
        self.scope = need


@dataclasses.dataclass(frozen=True, slots=True)
class ApiToken:
    """A token as its owner and admins see it (never the token itself)."""

    id: int
    technician_id: int
    name: str
    scopes: frozenset[Scope]
    created_at: float
    expires_at: float | None = None
    last_used_at: float | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclasses.dataclass(frozen=True, slots=True)
class TokenGrant:
    """Who a presented token speaks for, and what it may do."""

    technician: Technician
    token: ApiToken

    def require(self, need: Scope) -> Technician:
        if not grants(self.token.scopes, need):
            raise InsufficientScope(need)
        return self.technician


def _token(row: Any, prefix: str = "") -> ApiToken:
    def field(name: str) -> Any:
        return getattr(row, prefix + name)

    return ApiToken(field("id"), field("technician_id"), field("name"),
                    frozenset(Scope(s) for s in str(field("scopes")).split()),
                    field("created_at"), field("expires_at"), field("last_used_at"))


_TOKEN_COLUMNS = (api_tokens.c.id, api_tokens.c.technician_id, api_tokens.c.name,
                  api_tokens.c.scopes, api_tokens.c.created_at, api_tokens.c.expires_at,
                  api_tokens.c.last_used_at)


class TokenStore:
    """Creating, resolving, listing and revoking API tokens."""

    def __init__(self, engine: AsyncEngine, hasher: Hasher, clock: Clock,
                 audit: AuditService) -> None:
        self._engine = engine
        self._hasher = hasher
        self._clock = clock
        self._audit = audit
        # token hash -> (grant, remembered until); token id -> when this node last wrote
        self._cache: dict[str, tuple[TokenGrant, float]] = {}
        self._used: dict[int, float] = {}

    async def create(self, technician_id: int, scopes: frozenset[Scope], *, name: str = "",
                     expires_at: float | None = None) -> tuple[ApiToken, str]:
        """A new token (shown only now) and what will be listed of it."""
        name = " ".join(name.split())
        if len(name) > MAX_NAME:
            raise InvalidInput(f"A token's name has at most {MAX_NAME} characters.")
        if not scopes:
            raise InvalidInput("A token needs at least one scope.", code="invalid_scope")
        now = self._clock.now()
        if expires_at is not None and expires_at <= now:
            raise InvalidInput("The expiry must lie in the future.", code="invalid_expiry")
        token = Credential.API.new()
        async with self._engine.begin() as conn:
            owner = (await conn.execute(sa.select(technicians).where(
                technicians.c.id == technician_id))).first()
            if owner is None or owner.disabled_at is not None:
                raise AccountDisabled("This account is disabled.")
            result = await conn.execute(api_tokens.insert().values(
                technician_id=technician_id, token_hash=self._hasher.hash("api", token),
                created_at=now, scopes=scope_text(scopes), name=name, expires_at=expires_at))
            (new_id,) = result.inserted_primary_key or (None,)
        made = ApiToken(int(new_id), technician_id, name, scopes, now,  # type: ignore[arg-type]
                        expires_at)
        await self._audit.record(Action.TOKEN_CREATED, details={
            **_described(made), "technician": named(from_row(owner))})  # never the token
        return made, token

    async def resolve(self, token: str) -> TokenGrant:
        """The grant of a live token; Unauthenticated for an unknown, revoked or expired
        one, or one whose owner is disabled."""
        token_hash = self._hasher.hash("api", token)
        now = self._clock.now()
        cached = self._cache.get(token_hash)
        if cached is not None and cached[1] > now:
            grant = cached[0]
        else:
            async with self._engine.connect() as conn:
                row = (await conn.execute(
                    sa.select(technicians, *[c.label(f"token_{c.name}") for c in _TOKEN_COLUMNS])
                    .join(api_tokens).where(api_tokens.c.token_hash == token_hash,
                                            api_tokens.c.revoked_at.is_(None),
                                            technicians.c.disabled_at.is_(None)))).first()
            if row is None:
                raise Unauthenticated("Unknown API token.")
            grant = TokenGrant(from_row(row), _token(row, "token_"))
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[token_hash] = (grant, now + _CACHE_SECONDS)
        if grant.token.expired(now):
            raise Unauthenticated("This API token has expired.")
        await self._note_use(grant.token, now)
        return grant

    async def _note_use(self, token: ApiToken, now: float) -> None:
        if now - self._used.get(token.id, float("-inf")) < LAST_USED_EVERY:
            return
        if len(self._used) >= _CACHE_SIZE:
            self._used.clear()
        self._used[token.id] = now
        async with self._engine.begin() as conn:
            await conn.execute(api_tokens.update().where(api_tokens.c.id == token.id)
                               .values(last_used_at=now))

    async def alive(self, token_id: int) -> bool:
        """Whether the token is neither revoked nor expired."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(api_tokens.c.revoked_at, api_tokens.c.expires_at)
                                      .where(api_tokens.c.id == token_id))).first()
        return row is not None and row.revoked_at is None and (
            row.expires_at is None or row.expires_at > self._clock.now())

    async def listed(self, technician_id: int | None = None) -> list[ApiToken]:
        """Tokens not revoked (expired ones included), newest first; of one technician or
        of everybody."""
        query = sa.select(*_TOKEN_COLUMNS).where(api_tokens.c.revoked_at.is_(None))
        if technician_id is not None:
            query = query.where(api_tokens.c.technician_id == technician_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(api_tokens.c.id.desc()))).all()
        return [_token(row) for row in rows]

    async def for_viewer(self, by: Technician, technician_id: int | None) -> list[ApiToken]:
        """What `by` may list: their own tokens; admins anyone's (None: everybody's)."""
        if not by.is_admin and technician_id != by.id:
            raise Forbidden("Only admins see other technicians' tokens.")
        return await self.listed(technician_id)

    async def revoke(self, by: Technician | None, token_id: int) -> ApiToken:
        """Revoke a token of `by`'s own, or, for an admin, anyone's (None: the operator,
        from the command line). The caller publishes the change so that every node
        forgets the token; other nodes otherwise notice within _CACHE_SECONDS."""
        now = self._clock.now()
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(*_TOKEN_COLUMNS).where(
                api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None)))).first()
            if row is None or (by is not None and row.technician_id != by.id
                               and not by.is_admin):
                raise NotFound("No such API token.")
            await conn.execute(api_tokens.update().where(api_tokens.c.id == token_id)
                               .values(revoked_at=now))
            owner = from_row((await conn.execute(sa.select(technicians).where(
                technicians.c.id == row.technician_id))).one())
        revoked = _token(row)
        self.forget(revoked.technician_id)
        await self._audit.record(Action.TOKEN_REVOKED, details={
            **_described(revoked), "technician": named(owner), "reason": "revoked"})
        return revoked

    def forget(self, technician_id: int | None = None) -> None:
        """Drop remembered tokens of a technician who changed (None: of everybody)."""
        if technician_id is None:
            self._cache.clear()
            return
        for token_hash, (grant, _) in list(self._cache.items()):
            if grant.technician.id == technician_id:
                del self._cache[token_hash]



def _described(token: ApiToken) -> dict[str, object]:
    """A token as audit records describe it (never the token itself)."""
    return {"serial": token.id, "name": token.name, "scopes": scope_text(token.scopes),
            "expires_at": token.expires_at}

