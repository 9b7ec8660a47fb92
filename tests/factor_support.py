"""Helpers for the second-factor tests: codes computed from the secret a page shows."""

from __future__ import annotations

import re

import pyotp

from broker.clock import FakeClock


def secret_from(html: str) -> str:
    match = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', html)
    assert match, "the page shows no authenticator secret"
    return match.group(1).replace(" ", "")


def code_at(secret: str, clock: FakeClock, offset: float = 0.0) -> str:
    return pyotp.TOTP(secret).at(clock.now() + offset)


def recovery_codes_from(html: str) -> list[str]:
    codes = re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", html)
    assert len(codes) == 10, html
    return codes
