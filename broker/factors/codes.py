"""The codes of second factors: authenticator (TOTP, RFC 6238) codes and recovery codes.

A TOTP code is accepted for the current 30-second step and one step either side (clocks
of phones drift), and only for a step after the last one used: a code seen once (over a
shoulder, in a proxy's log) is worthless afterwards. Codes are compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets

import pyotp

STEP_SECONDS = 30
_DRIFT_STEPS = 1
# Recovery codes: 10 characters of 32 that cannot be mistaken for each other (50 bits).
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_secret() -> str:
    return pyotp.random_base32(32)  # 160 bits, as RFC 4226 recommends


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def step_at(now: float) -> int:
    return int(now // STEP_SECONDS)


def matching_step(secret: str, code: str, now: float, *, after: int) -> int | None:
    """The time step (after `after`) whose code `code` is, or None."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = step_at(now)
    found = None
    for step in range(current - _DRIFT_STEPS, current + _DRIFT_STEPS + 1):
        # Every candidate is compared, so the time taken says nothing of which matched.
        if hmac.compare_digest(totp.generate_otp(step).encode(), code.encode()) and step > after:
            found = step
    return found


def new_recovery_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def normalized_recovery_code(code: str) -> str:
    """What is hashed: lower case, without the dash and spaces people type."""
    return "".join(ch for ch in code.lower() if ch.isalnum())


def looks_like_totp(code: str) -> bool:
    stripped = "".join(code.split())
    return len(stripped) == 6 and stripped.isascii() and stripped.isdigit()
