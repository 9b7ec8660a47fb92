"""The pages of second factors: the second step of a login (/login/factor), a technician's
own factors (/account/security, the authenticator app, recovery codes), and confirming
it is them before changing those (/account/confirm). The passkey ceremonies are in
web/passkeys.py, the API in web/factors_api.py."""

from __future__ import annotations

import dataclasses
from typing import Any

import aiohttp_jinja2
import segno
from aiohttp import web
from aiohttp_session import get_session

from broker.errors import InvalidInput, Unauthenticated
from broker.factors import FreshSignInRequired, WrongCode
from broker.technicians import PasswordChangeRequired, Technician

from . import factor_login
from .api import form_body
from .auth import SIGNED_IN_AT, check_csrf, client_address, cookie_login
from .pages import finish_login, local_path
from .state import get_broker

routes = web.RouteTableDef()
SECURITY = "/account/security"


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Whoever manages factors now: a logged-in technician, or one whose login waits
    until they set up the factor the policy requires (`enrolling`)."""

    technician: Technician
    signed_in_at: float | None
    enrolling: bool


async def actor_of(request: web.Request) -> Actor:
    found = await cookie_login(request)
    if found is not None:
        if found[0].must_change_password:
            raise web.HTTPSeeOther("/password")
        session = await get_session(request)
        at = session.get(SIGNED_IN_AT)
        return Actor(found[0], float(at) if isinstance(at, (int, float)) else None, False)
    waiting = await factor_login.pending(request, factor_login.ENROL)
    if waiting is None:
        raise web.HTTPSeeOther("/login")
    return Actor(waiting.technician, waiting.password_at, True)


def confirm_first(actor: Actor) -> web.HTTPSeeOther:
    """Where a change that needs a fresh sign-in goes instead."""
    if actor.enrolling:  # their pending sign-in lapsed meanwhile
        return web.HTTPSeeOther("/login")
    return web.HTTPSeeOther(f"/account/confirm?next={SECURITY}")


async def read_form(request: web.Request) -> dict[str, Any]:
    form = await form_body(request)
    await check_csrf(request, str(form.get("_csrf", "")))
    return dict(form)


# -- the second step of a login ------------------------------------------------------------


@routes.get("/login/factor")
async def factor_form(request: web.Request) -> web.Response:
    waiting = await factor_login.pending(request, factor_login.VERIFY)
    if waiting is None:
        raise web.HTTPSeeOther("/login")
    return await factor_page(request, waiting.technician, None)


async def factor_page(request: web.Request, technician: Technician, error: str | None,
                       status: int = 200) -> web.Response:
    factors = await get_broker(request.app).factors.status(technician)
    return aiohttp_jinja2.render_template("factor.html", request, {
        "technician": technician, "factors": factors, "error": error}, status=status)


@routes.post("/login/factor")
async def give_factor(request: web.Request) -> web.Response:
    """A code from the authenticator app or a recovery code; or, right after setting up
    the first factor, just going on to the login."""
    form = await read_form(request)
    waiting = await factor_login.pending(request, factor_login.VERIFY, factor_login.PASSED)
    if waiting is None:
        raise web.HTTPSeeOther("/login")
    if waiting.mode == factor_login.VERIFY:
        try:
            await get_broker(request.app).factors.verify(waiting.technician,
                                                         str(form.get("code", "")))
        except WrongCode as error:
            return await factor_page(request, waiting.technician, error.code, 401)
    return await finish_login(request, waiting.technician)


# -- a technician's own factors ------------------------------------------------------------


@routes.get(SECURITY)
async def security_page(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    factors = get_broker(request.app).factors
    return aiohttp_jinja2.render_template("security.html", request, {
        "technician": actor.technician, "enrolling": actor.enrolling,
        "factors": await factors.status(actor.technician),
        "requirement": await factors.requirement(),
        # Why the last passkey was not added (web/passkeys.py sends the browser here).
        "error": request.query.get("error")})


@routes.post("/account/totp/new")
async def begin_totp(request: web.Request) -> web.Response:
    await read_form(request)
    actor = await actor_of(request)
    try:
        await get_broker(request.app).factors.begin_totp(actor.technician, actor.signed_in_at)
    except FreshSignInRequired:
        raise confirm_first(actor) from None
    raise web.HTTPSeeOther("/account/totp")


@routes.get("/account/totp")
async def totp_page(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    return await _totp_page(request, actor, None)


async def _totp_page(request: web.Request, actor: Actor, error: str | None,
                     status: int = 200) -> web.Response:
    setup = await get_broker(request.app).factors.pending_totp(actor.technician)
    if setup is None:
        raise web.HTTPSeeOther(SECURITY)
    qr = segno.make(setup.uri, error="m").svg_inline(scale=5, title="QR", border=4, omitsize=True)
    # The secret in groups of four, as authenticator apps show and take it.
    grouped = " ".join(setup.secret[i:i + 4] for i in range(0, len(setup.secret), 4))
    return aiohttp_jinja2.render_template("totp.html", request, {
        "technician": actor.technician, "enrolling": actor.enrolling, "qr_svg": qr,
        "secret": grouped, "error": error}, status=status)


@routes.post("/account/totp")
async def confirm_totp(request: web.Request) -> web.Response:
    form = await read_form(request)
    actor = await actor_of(request)
    try:
        fresh = await get_broker(request.app).factors.confirm_totp(
            actor.technician, str(form.get("code", "")), actor.signed_in_at)
    except FreshSignInRequired:
        raise confirm_first(actor) from None
    except WrongCode as error:
        return await _totp_page(request, actor, error.code, 400)
    if actor.enrolling:
        await factor_login.mark_passed(request)
    return recovery_page(request, actor, fresh)


def recovery_page(request: web.Request, actor: Actor, fresh: list[str]) -> web.Response:
    return aiohttp_jinja2.render_template("recovery_codes.html", request, {
        "technician": actor.technician, "enrolling": actor.enrolling, "codes": fresh})


@routes.post("/account/totp/remove")
async def remove_totp(request: web.Request) -> web.Response:
    await read_form(request)
    actor = await actor_of(request)
    try:
        await get_broker(request.app).factors.remove_totp(actor.technician,
                                                          actor.signed_in_at)
    except FreshSignInRequired:
        raise confirm_first(actor) from None
    raise web.HTTPSeeOther(SECURITY)


@routes.post("/account/recovery-codes")
async def new_recovery_codes(request: web.Request) -> web.Response:
    await read_form(request)
    actor = await actor_of(request)
    try:
        fresh = await get_broker(request.app).factors.new_recovery_codes(
            actor.technician, actor.signed_in_at)
    except FreshSignInRequired:
        raise confirm_first(actor) from None
    return recovery_page(request, actor, fresh)


# -- confirming it is them -----------------------------------------------------------------


async def _logged_in(request: web.Request) -> Technician:
    found = await cookie_login(request)
    if found is None:
        raise web.HTTPSeeOther("/login")
    if found[0].must_change_password:
        raise PasswordChangeRequired("Choose your own password first.")
    return found[0]


@routes.get("/account/confirm")
async def confirm_form(request: web.Request) -> web.Response:
    technician = await _logged_in(request)
    return await _confirm_page(request, technician, None)


async def _confirm_page(request: web.Request, technician: Technician, error: str | None,
                        status: int = 200) -> web.Response:
    factors = await get_broker(request.app).factors.status(technician)
    return aiohttp_jinja2.render_template("confirm.html", request, {
        "technician": technician, "factors": factors, "error": error,
        "next": local_path(request.query.get("next", SECURITY))}, status=status)


@routes.post("/account/confirm")
async def confirm(request: web.Request) -> web.Response:
    """The password again, or a second factor: changing factors is allowed for the next
    few minutes."""
    broker = get_broker(request.app)
    form = await read_form(request)
    technician = await _logged_in(request)
    password, code = str(form.get("password", "")), str(form.get("code", ""))
    try:
        if password:
            client = client_address(request, broker.settings.trust_forwarded_for)
            async with broker.login_limiter.attempt(client, technician.email) as attempt:
                try:
                    await broker.technicians.login(technician.email, password)
                except Unauthenticated:
                    attempt.fail()
                    raise
        elif code:
            await broker.factors.verify(technician, code)
        else:
            raise InvalidInput("Give your password or a code.", code="nothing_given")
    except (Unauthenticated, InvalidInput) as error:
        # 400: the page itself was reached by a login; this form's answer was wrong.
        return await _confirm_page(request, technician, error.code, 400)
    session = await get_session(request)
    session[SIGNED_IN_AT] = broker.clock.now()
    raise web.HTTPSeeOther(local_path(str(form.get("next", SECURITY))))
