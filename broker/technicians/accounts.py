"""Managing technicians: what admins do to accounts (add, rename, make or unmake admins,
disable, reset passwords) and what technicians do to their own (change the password).

Disabling a technician ends their logins and revokes their API tokens in one transaction
and keeps everything they did (sessions, transcripts, notes). There is always at least
one active admin: the last one cannot be disabled or lose the admin right. Whatever
changes a technician's credentials is published as `TechnicianChanged` on
`TECHNICIANS_TOPIC`, so that every node drops what it remembers of them (cached API
tokens) and closes the sockets their ended credentials opened (web/signouts.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import secrets
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..audit import Action, AuditService
from ..bus import EventBus
from ..clock import Clock
from ..errors import Conflict, Forbidden, NotFound
from ..hashing import hash_password
from ..schema import api_tokens, technicians
from .store import Technician, TechnicianStore, check_display_name, from_row, store_password
from .tokens import ApiToken

TECHNICIANS_TOPIC = "technicians"


class Ending(enum.StrEnum):
    """Why a technician's login or token ended; the sockets it opened close with it as
    their reason, and the pages say it in words."""

    LOGOUT = "logout"
    ENDED_BY_ADMIN = "ended_by_admin"
    SEAT_TAKEN = "seat_taken"  # an admin ended it to log in on a full broker
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a reason, not a password
    PASSWORD_RESET = "password_reset"  # noqa: S105
    FACTORS_RESET = "factors_reset"  # an admin removed their second factors
    TECHNICIAN_DISABLED = "technician_disabled"
    EXPIRED = "expired"  # the login's 12 hours ran out

    @classmethod
    def of(cls, reason: str | None) -> Ending:
        """A stored reason as an Ending (an unknown one as a logout)."""
        try:
            return cls(reason or "")
        except ValueError:
            return cls.LOGOUT


@dataclasses.dataclass(frozen=True, slots=True)
class TechnicianChanged:
    """A technician's account changed. `logins_ended`: all their browser logins ended
    but `kept_login` (the one a password was changed from); `ended_login`: that one login
    ended; `tokens_revoked`: their API tokens were revoked. `ending` says why.
    `admin_revoked`: they are no admin any more, so what their open sockets may see must
    be decided again. `revoked_token`: with `tokens_revoked`, only this one of their
    tokens was revoked."""

    technician_id: int
    logins_ended: bool = False
    tokens_revoked: bool = False
    ending: Ending | None = None
    ended_login: str | None = None
    kept_login: str | None = None
    admin_revoked: bool = False
    revoked_token: int | None = None

    def ends(self, login_id: str | None, token_id: int | None = None) -> bool:
        """Whether this change ends the technician's login `login_id` (None: their API
        token `token_id`)."""
        if login_id is None:
            return self.tokens_revoked and self.revoked_token in (None, token_id)
        return login_id == self.ended_login or (self.logins_ended
                                                and login_id != self.kept_login)


class Logins(Protocol):
    """Technicians' browser logins (broker/handoff/logins.py keeps them)."""

    async def end_all(self, conn: AsyncConnection, technician_id: int, reason: str, *,
                      keep: str | None = None) -> None: ...


def one_time_password() -> str:
    return secrets.token_urlsafe(12)


class Accounts:
    """The account operations, with who-may-do-what checks."""

    def __init__(self, engine: AsyncEngine, store: TechnicianStore, logins: Logins,
                 bus: EventBus, clock: Clock, audit: AuditService) -> None:
        self._engine = engine
        self._audit = audit
        self._store = store
        self._logins = logins
        self._bus = bus
        self._clock = clock

    async def create(self, by: Technician, email: str, name: str, *,
                     admin: bool = False) -> tuple[Technician, str]:
        """A new technician with a one-time password, to be changed at the first login."""
        _admin_only(by)
        password = one_time_password()
        technician = await self._store.add(email, name, password, is_admin=admin,
                                           must_change_password=True)
        return technician, password

    async def update(self, by: Technician, technician_id: int, *, name: str | None = None,
                     admin: bool | None = None, disabled: bool | None = None) -> Technician:
        _admin_only(by)
        values: dict[str, object] = {}
        if name is not None:
            values["display_name"] = check_display_name(name)
        if admin is not None:
            values["is_admin"] = admin
        now = self._clock.now()
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(technicians).where(
                technicians.c.id == technician_id))).first()
            if row is None:
                raise NotFound("No such technician.")
            current = from_row(row)
            if disabled is not None and disabled != current.disabled:
                values["disabled_at"] = now if disabled else None
            losing_admin = current.is_admin and not current.disabled and (
                admin is False or disabled is True)
            if losing_admin:
                await _keep_an_admin(conn, technician_id)
            if values:
                await conn.execute(technicians.update().where(
                    technicians.c.id == technician_id).values(**values))
            ends = disabled is True and not current.disabled
            revoked = 0
            if ends:
                await self._logins.end_all(conn, technician_id, Ending.TECHNICIAN_DISABLED)
                revoked = (await conn.execute(api_tokens.update().where(
                    api_tokens.c.technician_id == technician_id,
                    api_tokens.c.revoked_at.is_(None)).values(revoked_at=now))).rowcount
        self._changed(TechnicianChanged(
            technician_id, logins_ended=ends, tokens_revoked=ends,
            ending=Ending.TECHNICIAN_DISABLED if ends else None,
            admin_revoked=losing_admin and not ends))
        changed = await self._store.get(technician_id)
        named = {"id": changed.id, "name": changed.display_name, "email": changed.email}
        if values:
            await self._audit.record(Action.TECHNICIAN_CHANGED, details={
                "technician": named, "changes": {
                    "name": values.get("display_name"), "admin": values.get("is_admin"),
                    "disabled": (values["disabled_at"] is not None
                                 if "disabled_at" in values else None)}})
        if revoked:
            await self._audit.record(Action.TOKEN_REVOKED, details={
                "technician": named, "count": revoked, "reason": "technician_disabled"})
        return changed

    async def reset_password(self, by: Technician, technician_id: int) -> tuple[Technician, str]:
        """A one-time password that must be changed at the next login. Their logins end
        (someone may be logged in with the old password); API tokens stay valid."""
        _admin_only(by)
        technician = await self._store.get(technician_id)
        if technician.disabled:
            raise Conflict("Enable the technician first.", code="technician_disabled")
        password = one_time_password()
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self._engine.begin() as conn:
            await store_password(conn, technician_id, password_hash, must_change=True)
            await self._logins.end_all(conn, technician_id, Ending.PASSWORD_RESET)
        self._changed(TechnicianChanged(technician_id, logins_ended=True,
                                        ending=Ending.PASSWORD_RESET))
        await self._audit.record(Action.PASSWORD_RESET, details={"technician": {
            "id": technician.id, "name": technician.display_name, "email": technician.email}})
        return await self._store.get(technician_id), password

    async def change_password(self, technician: Technician, current: str, new: str, *,
                              keep_login: str | None = None) -> Technician:
        """The technician's own change. Their other logins end; `keep_login` (the one
        they changed it from) stays."""
        changed = await self._store.change_password(technician.id, current, new)
        async with self._engine.begin() as conn:
            await self._logins.end_all(conn, technician.id, Ending.PASSWORD_CHANGED,
                                       keep=keep_login)
        self._changed(TechnicianChanged(technician.id, logins_ended=True,
                                        ending=Ending.PASSWORD_CHANGED, kept_login=keep_login))
        return changed

    async def revoke_token(self, by: Technician, token_id: int) -> ApiToken:
        """Revoke one API token: the owner's own, or any as an admin. Every node forgets it."""
        revoked = await self._store.tokens.revoke(by, token_id)
        self._changed(TechnicianChanged(revoked.technician_id, tokens_revoked=True,
                                        revoked_token=revoked.id))
        return revoked

    def _changed(self, change: TechnicianChanged) -> None:
        self._store.forget(change.technician_id)
        self._bus.publish(TECHNICIANS_TOPIC, change)


def _admin_only(by: Technician) -> None:
    if not by.is_admin or by.disabled:
        raise Forbidden("Only admins can do this.")


async def _keep_an_admin(conn: AsyncConnection, losing: int) -> None:
    """Refuse to leave no active admin. The active admins' rows stay locked until the
    change commits (PostgreSQL; SQLite has one writer), in id order, so that two admins
    demoting each other at once cannot both succeed."""
    active = (await conn.scalars(sa.select(technicians.c.id).where(
        technicians.c.is_admin, technicians.c.disabled_at.is_(None))
        .order_by(technicians.c.id).with_for_update())).all()
    if losing not in active:
        raise NotFound("No such technician.")
    if len(active) == 1:
        raise Conflict("This is the last active admin: make another technician an admin "
                       "first.", code="last_admin")
