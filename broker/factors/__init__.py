"""Technicians' second factors: authenticator apps (TOTP), recovery codes, passkeys, and
the policy that requires them (docs/security.md, Second factors)."""

from .model import (
    FRESH_SECONDS,
    FactorStatus,
    FactorStillRequired,
    FreshSignInRequired,
    OwnFactors,
    Passkey,
    Requirement,
    TotpSetup,
    WrongCode,
)
from .passkeys import PasskeyRejected, Passkeys
from .service import Factors
from .store import FactorStore

__all__ = ["FRESH_SECONDS", "FactorStatus", "FactorStillRequired", "FactorStore", "Factors",
           "FreshSignInRequired", "OwnFactors", "Passkey", "PasskeyRejected", "Passkeys",
           "Requirement", "TotpSetup",
           "WrongCode"]
