"""What second factors are made of: the policy, a technician's factors, and the errors."""

from __future__ import annotations

import dataclasses
import enum

from ..errors import Conflict, Forbidden, Unauthenticated
from ..technicians import Technician

# Enrolling or removing a factor needs a password or a factor given this recently.
FRESH_SECONDS = 300.0
RECOVERY_CODES = 10


class Requirement(enum.StrEnum):
    """Who must have a second factor (an admin's choice)."""

    OFF = "off"
    ADMINS = "admins"
    EVERYONE = "everyone"

    def applies_to(self, technician: Technician) -> bool:
        return self is Requirement.EVERYONE or (
            self is Requirement.ADMINS and technician.is_admin)


@dataclasses.dataclass(frozen=True, slots=True)
class Passkey:
    id: int
    name: str
    created_at: float
    last_used_at: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class FactorStatus:
    """A technician's second factors (never their secrets)."""

    totp: bool
    recovery_codes_left: int
    passkeys: tuple[Passkey, ...] = ()

    @property
    def any(self) -> bool:
        return self.totp or bool(self.passkeys)


@dataclasses.dataclass(frozen=True, slots=True)
class TotpSetup:
    """A new authenticator secret, shown once for the technician's app to take."""

    secret: str
    uri: str  # otpauth://, what the QR code holds


class WrongCode(Unauthenticated):
    """The code is not right (or was used already, or is too old)."""

    code = "wrong_code"


class FreshSignInRequired(Forbidden):
    """Changing second factors needs a password or a factor from the last few minutes."""

    code = "fresh_sign_in_required"


class FactorStillRequired(Conflict):
    """The technician's last second factor cannot go while a second factor is required."""

    code = "second_factor_required"


class OwnFactors(Forbidden):
    """Admins cannot reset their own second factors; another admin must."""

    code = "own_factors"
