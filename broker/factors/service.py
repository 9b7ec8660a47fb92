"""Second factors: what technicians do with their own (enrol an authenticator app, prove
it at login, use and renew recovery codes, remove them) and what admins do (choose who
must have one, reset a technician's).

Codes are guessed at most as fast as passwords: every attempt at a technician's codes
(authenticator or recovery) goes through one guessing limit per technician, counted for
all nodes (broker/redislimits.py) where there are several. Secrets never reach a log.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncEngine

from ..audit import Action, AuditActor, AuditService
from ..bus import EventBus
from ..clock import Clock
from ..errors import Conflict, Forbidden
from ..hashing import Hasher, Sealer
from ..ratelimit import Attempt, Guesses
from ..technicians import TECHNICIANS_TOPIC, Ending, Technician, TechnicianChanged
from ..technicians.accounts import Logins
from . import codes
from .model import (
    FRESH_SECONDS,
    RECOVERY_CODES,
    FactorStatus,
    FactorStillRequired,
    FreshSignInRequired,
    OwnFactors,
    Requirement,
    TotpSetup,
    WrongCode,
)
from .store import FactorStore


class Factors:
    def __init__(self, engine: AsyncEngine, store: FactorStore, sealer: Sealer,
                 hasher: Hasher, limiter: Guesses, logins: Logins, bus: EventBus,
                 clock: Clock, audit: AuditService, *, issuer: str) -> None:
        self._engine = engine
        self.store = store
        self._sealer = sealer
        self._hasher = hasher
        self._limiter = limiter
        self._logins = logins
        self._bus = bus
        self._clock = clock
        self._issuer = issuer
        self._audit = audit

    # -- the policy ---------------------------------------------------------------------

    async def requirement(self) -> Requirement:
        return await self.store.requirement()

    async def set_requirement(self, by: Technician, requirement: Requirement) -> None:
        _admin_only(by)
        await self.store.set_requirement(requirement, by.id)
        await self._audit.record(Action.FACTOR_POLICY_CHANGED, actor=_actor(by),
                                 details={"required": requirement.value})

    async def must_enrol(self, technician: Technician) -> bool:
        """The policy requires a second factor of this technician, who has none."""
        if not (await self.requirement()).applies_to(technician):
            return False
        return not (await self.store.status(technician.id)).any

    async def record(self, action: Action, technician: Technician,
                     details: dict[str, object] | None = None) -> None:
        await self._audit.record(action, actor=_actor(technician), details=details)

    async def status(self, technician: Technician) -> FactorStatus:
        return await self.store.status(technician.id)

    def check_fresh(self, signed_in_at: float | None) -> None:
        """Enrolling or removing a factor needs a password or factor given lately."""
        if signed_in_at is None or self._clock.now() - signed_in_at > FRESH_SECONDS:
            raise FreshSignInRequired("Confirm it is you: sign in again first.")

    # -- the authenticator app ----------------------------------------------------------

    async def begin_totp(self, technician: Technician, signed_in_at: float | None) -> TotpSetup:
        """A new secret for the technician's app, unconfirmed until its first code."""
        self.check_fresh(signed_in_at)
        secret = codes.new_secret()
        await self.store.put_pending_totp(technician.id, self._seal(technician.id, secret))
        return self._setup(technician, secret)

    async def pending_totp(self, technician: Technician) -> TotpSetup | None:
        row = await self.store.totp(technician.id)
        if row is None or row.confirmed:
            return None
        return self._setup(technician, self._open(technician.id, row.sealed_secret))

    async def confirm_totp(self, technician: Technician, code: str,
                           signed_in_at: float | None) -> list[str]:
        """Confirm the new app with its first code. Returns the new recovery codes (to be
        shown once) when the technician had none left, else []."""
        self.check_fresh(signed_in_at)
        row = await self.store.totp(technician.id)
        if row is None or row.confirmed:
            raise Conflict("Start setting up an authenticator app first.",
                           code="no_pending_totp")
        secret = self._open(technician.id, row.sealed_secret)
        async with self._attempt(technician) as attempt:
            step = codes.matching_step(secret, code, self._clock.now(), after=row.last_step)
            if step is None:
                attempt.fail()
                raise WrongCode("This code is not right. Type the code your app shows now.")
        fresh = await self.codes_for_new_factor(technician)
        if not await self.store.confirm_totp(technician.id, step, self.hashes(
                technician.id, fresh)):
            raise Conflict("Start setting up an authenticator app first.",
                           code="no_pending_totp")
        await self._audit.record(Action.FACTOR_ADDED, actor=_actor(technician),
                                 details={"kind": "totp"})
        return fresh

    async def remove_totp(self, technician: Technician, signed_in_at: float | None) -> None:
        self.check_fresh(signed_in_at)
        status = await self.store.status(technician.id)
        if status.totp and not status.passkeys:
            await self.keep_required(technician)
        await self.store.remove_totp(technician.id)
        await self._audit.record(Action.FACTOR_REMOVED, actor=_actor(technician),
                                 details={"kind": "totp"})

    # -- proving it ---------------------------------------------------------------------

    async def verify(self, technician: Technician, code: str) -> str:
        """Check an authenticator code or a recovery code, each usable once. Returns
        "totp" or "recovery"; WrongCode otherwise (and the guess is counted)."""
        async with self._attempt(technician) as attempt:
            kind = await self._check(technician, code)
            if kind is None:
                attempt.fail()
                await self._audit.record(Action.LOGIN_FAILED, actor=_actor(technician),
                                         details={"email": technician.email,
                                                  "reason": "wrong_second_factor"})
                raise WrongCode("This code is not right.")
        return kind

    async def _check(self, technician: Technician, code: str) -> str | None:
        if codes.looks_like_totp(code):
            row = await self.store.totp(technician.id)
            if row is None or not row.confirmed:
                return None
            secret = self._open(technician.id, row.sealed_secret)
            step = codes.matching_step(secret, code, self._clock.now(), after=row.last_step)
            if step is not None and await self.store.use_step(technician.id, step):
                return "totp"
            return None
        normalized = codes.normalized_recovery_code(code)
        if len(normalized) != 10:
            return None
        if await self.store.use_recovery(technician.id, self._recovery_hash(
                technician.id, normalized)):
            left = (await self.store.status(technician.id)).recovery_codes_left
            await self._audit.record(Action.RECOVERY_CODE_USED, actor=_actor(technician),
                                     details={"left": left})
            return "recovery"
        return None

    # -- recovery codes -----------------------------------------------------------------

    async def new_recovery_codes(self, technician: Technician,
                                 signed_in_at: float | None) -> list[str]:
        """Ten new codes (the old ones stop working), shown once."""
        self.check_fresh(signed_in_at)
        if not (await self.store.status(technician.id)).any:
            raise Conflict("Set up a second factor first.", code="no_second_factor")
        fresh = _new_codes()
        await self.store.replace_recovery(technician.id, self.hashes(technician.id, fresh))
        await self._audit.record(Action.RECOVERY_CODES_RENEWED, actor=_actor(technician))
        return fresh

    # -- admins -------------------------------------------------------------------------

    async def reset(self, by: Technician, technician: Technician) -> None:
        """Remove every second factor of a technician (who lost their phone) and end
        their logins. Never one's own: that takes another admin."""
        _admin_only(by)
        if by.id == technician.id:
            raise OwnFactors("Another admin must reset your second factors.")
        async with self._engine.begin() as conn:
            await self.store.reset(conn, technician.id)
            await self._logins.end_all(conn, technician.id, Ending.FACTORS_RESET)
        self._bus.publish(TECHNICIANS_TOPIC, TechnicianChanged(
            technician.id, logins_ended=True, ending=Ending.FACTORS_RESET))
        await self._audit.record(Action.FACTORS_RESET, actor=_actor(by), details={
            "technician": {"id": technician.id, "name": technician.display_name,
                           "email": technician.email}})

    # -- helpers ------------------------------------------------------------------------

    async def codes_for_new_factor(self, technician: Technician) -> list[str]:
        """Recovery codes to hand out with a new factor: ten new ones when the
        technician has none left, else none (they keep theirs)."""
        status = await self.store.status(technician.id)
        return [] if status.recovery_codes_left else _new_codes()

    async def keep_required(self, technician: Technician) -> None:
        if (await self.requirement()).applies_to(technician):
            raise FactorStillRequired("A second factor is required: set up another one "
                                      "before you remove this one.")

    def _attempt(self, technician: Technician) -> AbstractAsyncContextManager[Attempt]:
        return self._limiter.attempt(f"factor:{technician.id}", include_global=False)

    def _setup(self, technician: Technician, secret: str) -> TotpSetup:
        return TotpSetup(secret, codes.provisioning_uri(secret, technician.email,
                                                        self._issuer))

    def _seal(self, technician_id: int, secret: str) -> str:
        return self._sealer.seal(secret, f"totp:{technician_id}")

    def _open(self, technician_id: int, sealed: str) -> str:
        return self._sealer.open(sealed, f"totp:{technician_id}")

    def _recovery_hash(self, technician_id: int, normalized: str) -> str:
        return self._hasher.hash("recovery-code", f"{technician_id}:{normalized}")

    def hashes(self, technician_id: int, fresh: list[str]) -> list[str]:
        return [self._recovery_hash(technician_id, codes.normalized_recovery_code(code))
                for code in fresh]


def _new_codes() -> list[str]:
    return [codes.new_recovery_code() for _ in range(RECOVERY_CODES)]


def _actor(technician: Technician) -> AuditActor:
    return AuditActor.technician(technician.id, technician.display_name)


def _admin_only(by: Technician) -> None:
    if not by.is_admin or by.disabled:
        raise Forbidden("Only admins can do this.")

