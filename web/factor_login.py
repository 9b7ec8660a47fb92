"""The sign-in between the password and the login: a second factor to give, or (where the
policy requires one and the technician has none) one to set up first.

Until then no login exists: the cookie holds only a pending sign-in (the technician's id,
when the password was right, and what is still to do), which the second-factor pages
alone accept. Every other route sees nobody logged in. The pending sign-in lapses after
FRESH_SECONDS; the cookie is encrypted and signed, so it cannot be forged or edited.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web
from aiohttp_session import get_session

from broker.errors import BrokerError
from broker.factors import FRESH_SECONDS
from broker.technicians import Technician

from .auth import SESSION_COOKIE
from .state import get_broker

PENDING_KEY = "factor_pending"
VERIFY = "verify"  # the technician has a second factor: give it
ENROL = "enrol"  # the policy requires one they do not have: set one up
PASSED = "passed"  # set up just now (its first code proved it): the login may start


@dataclasses.dataclass(frozen=True, slots=True)
class Pending:
    technician: Technician
    mode: str
    password_at: float  # when the password was right: fresh enough to enrol


async def after_password(request: web.Request,
                         technician: Technician) -> web.Response | None:
    """Where a right password leads when a second step follows (None: straight to the
    login)."""
    factors = get_broker(request.app).factors
    if (await factors.status(technician)).any:
        return await _pending(request, technician, VERIFY, "/login/factor")
    if await factors.must_enrol(technician):
        return await _pending(request, technician, ENROL, "/account/security")
    return None


async def _pending(request: web.Request, technician: Technician, mode: str,
                   location: str) -> web.Response:
    session = await get_session(request)
    session.invalidate()  # a fresh cookie, as at a login
    session = await get_session(request)
    session[PENDING_KEY] = {"id": technician.id, "mode": mode,
                            "at": get_broker(request.app).clock.now()}
    return web.Response(status=303, headers={"Location": location})


async def pending(request: web.Request, *modes: str) -> Pending | None:
    """This browser's pending sign-in, if it is in one of `modes` and has not lapsed."""
    if SESSION_COOKIE not in request.cookies:
        return None
    session = await get_session(request)
    found: Any = session.get(PENDING_KEY)
    if not (isinstance(found, dict) and found.get("mode") in modes
            and isinstance(found.get("id"), int)
            and isinstance(found.get("at"), (int, float))):
        return None
    broker = get_broker(request.app)
    if broker.clock.now() - float(found["at"]) > FRESH_SECONDS:
        session.pop(PENDING_KEY, None)
        return None
    try:
        technician = await broker.technicians.get(found["id"])
    except BrokerError:
        return None
    if technician.disabled:
        return None
    return Pending(technician, str(found["mode"]), float(found["at"]))


async def mark_passed(request: web.Request) -> None:
    """The technician just set up their first factor: after the recovery codes are shown,
    the login may start."""
    session = await get_session(request)
    found = session.get(PENDING_KEY)
    if isinstance(found, dict):  # its first code was a factor given now
        session[PENDING_KEY] = {**found, "mode": PASSED,
                                "at": get_broker(request.app).clock.now()}
