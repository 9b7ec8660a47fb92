"""Who is calling: a technician (cookie login or API token) or an end user (participant token).

Cookie-authenticated requests that change state must carry the CSRF token of their login
(header ``X-CSRF-Token`` or form field ``_csrf``); API-token requests carry no cookies and
need none. Anonymous forms (the join form) carry the CSRF token of their anonymous cookie.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp_session import Session as CookieSession
from aiohttp_session import get_session

from broker.audit import AuditActor
from broker.audit import context as audit_context
from broker.credentials import Credential, kind_of
from broker.errors import BrokerError, Forbidden, Unauthenticated
from broker.technicians import Ending, PasswordChangeRequired, Scope, Technician, TokenGrant

from .scopes import route_need
from .state import get_broker

LOGIN_KEY = "login_id"
# When this login's technician last gave their password or a second factor: enrolling or
# removing a factor needs it to be recent (broker/factors, FRESH_SECONDS).
SIGNED_IN_AT = "signed_in_at"
CSRF_KEY = "csrf"
CSRF_HEADER = "X-CSRF-Token"


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class LazyCsrfToken:
    """The visitor's CSRF token, created only when a page actually prints it, so that
    API calls and static files do not each set a fresh session cookie."""

    def __init__(self, session: CookieSession) -> None:
        self._session = session

    def __str__(self) -> str:
        token = self._session.get(CSRF_KEY)
        if not isinstance(token, str):
            token = secrets.token_urlsafe(24)
            self._session[CSRF_KEY] = token
        return token


async def csrf_token(request: web.Request) -> LazyCsrfToken:
    return LazyCsrfToken(await get_session(request))


async def check_csrf(request: web.Request, submitted: str | None = None) -> None:
    session = await get_session(request)
    expected = session.get(CSRF_KEY)
    submitted = submitted or request.headers.get(CSRF_HEADER)
    if not isinstance(expected, str) or not submitted or not hmac.compare_digest(
            expected.encode(), submitted.encode()):
        raise Forbidden("The form has expired or did not come from this site. Reload the page.",
                        code="csrf_failed")


SESSION_COOKIE = "sb_session"


async def cookie_login(request: web.Request) -> tuple[Technician, str] | None:
    """The technician of this request's live login, and the login's id, whether or not
    they must change their password first (the password page needs them)."""
    if SESSION_COOKIE not in request.cookies:
        return None  # no login cookie: do not build (and hold) an empty cookie session
    session = await get_session(request)
    login_id = session.get(LOGIN_KEY)
    if not isinstance(login_id, str):
        return None
    broker = get_broker(request.app)
    try:
        # The login must still be live: a logout (or an admin) ends it for every copy
        # of the cookie.
        technician = await broker.technicians.get(await broker.logins.check(login_id))
    except BrokerError:
        session.invalidate()
        return None
    if technician.disabled:
        session.invalidate()
        return None
    return technician, login_id


async def cookie_technician(request: web.Request) -> Technician | None:
    """The logged-in technician; PasswordChangeRequired while they log in with a one-time
    password (a cookie then reaches nothing but the password page)."""
    found = await cookie_signed_in(request)
    return None if found is None else found[0]


async def cookie_signed_in(request: web.Request) -> tuple[Technician, str] | None:
    """`cookie_technician` and the id of their login (a socket is closed when it ends)."""
    found = await cookie_login(request)
    if found is not None and found[0].must_change_password:
        raise PasswordChangeRequired("Choose your own password first.")
    return found


async def current_technician(request: web.Request) -> Technician:
    """The technician behind this request; checks CSRF for cookie-authenticated changes."""
    token = bearer_token(request)
    if token is not None:
        kind = kind_of(token)
        if kind is Credential.PARTICIPANT:
            await get_broker(request.app).sessions.participant(token)  # 401 if unknown
            raise Forbidden("This endpoint needs a technician's credentials.")
        if kind is None:
            raise Unauthenticated("This is not a token the broker hands out.")
        return acting((await token_grant(request, token)).technician)
    technician = await cookie_technician(request)
    if technician is None:
        raise Unauthenticated("Log in or send an API token as 'Authorization: Bearer'.")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        await check_csrf(request)
    return acting(technician)


def acting(technician: Technician) -> Technician:
    """What this request or socket does from now on, `technician` does (for the audit
    log, broker/audit/context.py)."""
    audit_context.set_actor(AuditActor.technician(technician.id, technician.display_name))
    return technician


@web.middleware
async def audit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request's task knows its client's address (for the audit log)."""
    audit_context.set_address(client_address(
        request, get_broker(request.app).settings.trust_forwarded_for))
    return await handler(request)


async def token_grant(request: web.Request, token: str) -> TokenGrant:
    """An API token's grant, checked against the scope the route declares (web/scopes.py):
    401 for a token that is unknown, revoked or expired, 403 for one without the scope."""
    grant = await get_broker(request.app).technicians.tokens.resolve(token)
    need = route_need(request)
    if not isinstance(need, Scope):
        raise Forbidden("API tokens are not accepted here.", code="token_not_accepted")
    grant.require(need)
    return grant


async def log_in(request: web.Request, technician: Technician) -> CookieSession:
    """Start a login (SeatsTaken if every seat is taken) and give it a fresh cookie."""
    login_id = await get_broker(request.app).logins.start(technician.id)
    session = await get_session(request)
    session.invalidate()  # a fresh cookie at login: no session fixation
    session = await get_session(request)
    session[LOGIN_KEY] = login_id
    session[CSRF_KEY] = secrets.token_urlsafe(24)
    session[SIGNED_IN_AT] = get_broker(request.app).clock.now()
    return session


async def log_out(request: web.Request) -> None:
    session = await get_session(request)
    login_id = session.get(LOGIN_KEY)
    if isinstance(login_id, str):
        with contextlib.suppress(BrokerError):
            await get_broker(request.app).logins.end(login_id, Ending.LOGOUT,
                                                     by_admin=True)
    session.invalidate()


def client_address(request: web.Request, trust_forwarded_for: bool) -> str:
    if trust_forwarded_for:
        # The last entry is the one our own proxy appended; earlier ones the client wrote.
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.split(",")[-1].strip()
        if last:
            return last
    return request.remote or "unknown"
