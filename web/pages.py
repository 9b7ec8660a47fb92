"""The HTML pages: technician login and dashboard, the end user's join and chat pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from broker.core import Broker
from broker.delivery import Channel
from broker.errors import BrokerError, Forbidden, InvalidInput, KeyRejected, Unauthenticated
from broker.handoff.logins import SeatsTaken
from broker.keys import format_code
from broker.technicians import AccountDisabled, Ending, PasswordChangeRequired, Technician
from broker.technicians.store import MIN_PASSWORD
from broker.transcriptmail import COMPANY, TEAM

from . import factor_login
from .api import form_body, redeem
from .auth import (
    acting,
    check_csrf,
    client_address,
    cookie_login,
    cookie_technician,
    log_in,
    log_out,
)
from .i18n import LANG_COOKIE, LANGUAGES
from .state import CATALOGS, get_broker

routes = web.RouteTableDef()
PARTICIPANT_COOKIE = "sb_participant_{}"
PENDING_KEY = "waiting_for_seat"  # [technician id, until]
# The same participant token, sent only to the session's file API (plain download links).
FILES_COOKIE = "sb_files_{}"
# A browser's token from its last login, sent only to /login (docs/security.md).
KNOWN_COOKIE = "sb_known"
KNOWN_SECONDS = 365 * 86400


async def page_technician(request: web.Request) -> Technician:
    """The logged-in technician of a page; otherwise off to the login page, or to the
    password page while they log in with a one-time password."""
    try:
        technician = await cookie_technician(request)
    except PasswordChangeRequired:
        raise web.HTTPSeeOther("/password") from None
    if technician is None:
        raise web.HTTPSeeOther("/login")
    return technician


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    found = await cookie_login(request)
    raise web.HTTPSeeOther("/dashboard" if found else "/join")


def _login_page(request: web.Request, error: str | None = None, email: str = "",
                status: int = 200) -> web.Response:
    """The login form: single sign-on's button when it is set up, the password fields
    unless passwords are turned off (`?password=1` shows them anyway: the emergency
    path's one-time passwords still work, docs/security.md)."""
    settings = get_broker(request.app).settings
    return aiohttp_jinja2.render_template("login.html", request, {
        "error": error, "email": email, "sso": settings.sso,
        "password_login": settings.password_login or request.query.get("password") == "1"
        or error is not None}, status=status)


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    return _login_page(request)


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    form = await form_body(request)
    await check_csrf(request, str(form.get("_csrf", "")))
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    client = client_address(request, broker.settings.trust_forwarded_for)
    # Limited per address and per account; a browser that logged in to this account
    # before shows its token and is counted apart (PasswordGuesses).
    async with broker.login_limiter.attempt(client, email,
                                            request.cookies.get(KNOWN_COOKIE)) as attempt:
        try:
            technician = await broker.technicians.login(email, password)
        except Unauthenticated as error:
            attempt.fail()
            return _login_page(request, error.code, email, 401)
        except AccountDisabled as error:
            return _login_page(request, error.code, email, 403)
    if not broker.settings.password_login and not technician.must_change_password:
        # Single sign-on only; a one-time password (the emergency path) still works once.
        return _login_page(request, "password_login_off", email, 403)
    # With a second factor (or one to set up first) the login is not made yet: the
    # browser holds only a pending sign-in that reaches the second-factor pages alone.
    response = (await factor_login.after_password(request, technician)
                or await finish_login(request, technician))
    response.set_cookie(KNOWN_COOKIE, broker.login_limiter.browser_token(email),
                        max_age=KNOWN_SECONDS, path="/login", httponly=True, samesite="Lax",
                        secure=broker.settings.session_cookie_secure)
    return response


async def finish_login(request: web.Request, technician: Technician) -> web.Response:
    """The login itself, once every factor passed (or the page of taken seats)."""
    try:
        await log_in(request, technician)
    except SeatsTaken as taken:
        # The password was right: remember who is waiting for a seat, for a few minutes.
        session = await get_session(request)
        session[PENDING_KEY] = [technician.id, get_broker(request.app).clock.now() + 300]
        return aiohttp_jinja2.render_template("seats.html", request, {
            "technician": technician, "logins": taken.logins,
            "seats": get_broker(request.app).settings.seats}, status=409)
    return web.Response(status=303, headers={
        "Location": "/password" if technician.must_change_password else "/dashboard"})


@routes.post("/login/seat")
async def take_seat(request: web.Request) -> web.Response:
    """After "all seats are taken": try again, or (admins) end another login first."""
    broker = get_broker(request.app)
    form = await form_body(request)
    await check_csrf(request, str(form.get("_csrf", "")))
    session = await get_session(request)
    pending = session.get(PENDING_KEY)
    if not (isinstance(pending, list) and len(pending) == 2
            and broker.clock.now() < float(pending[1])):
        raise web.HTTPSeeOther("/login")
    technician = acting(await broker.technicians.get(int(pending[0])))
    end = str(form.get("end", ""))
    if end:
        if not technician.is_admin:
            raise Forbidden("Only an admin can end another technician's login.")
        await broker.logins.end(end, Ending.SEAT_TAKEN, by_admin=True)
    return await finish_login(request, technician)


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    form = await form_body(request)
    await check_csrf(request, str(form.get("_csrf", "")))
    await log_out(request)
    raise web.HTTPSeeOther("/login")


@routes.get("/password")
async def password_form(request: web.Request) -> web.Response:
    found = await cookie_login(request)
    if found is None:
        raise web.HTTPSeeOther("/login")
    return aiohttp_jinja2.render_template("password.html", request, {
        "technician": found[0], "error": None, "min_length": MIN_PASSWORD})


@routes.post("/password")
async def change_password(request: web.Request) -> web.Response:
    """A technician chooses a new password (a must after logging in with a one-time one);
    their other logins end."""
    broker = get_broker(request.app)
    form = await form_body(request)
    await check_csrf(request, str(form.get("_csrf", "")))
    found = await cookie_login(request)
    if found is None:
        raise web.HTTPSeeOther("/login")
    technician, login_id = found
    current, new = str(form.get("current", "")), str(form.get("new", ""))
    client = client_address(request, broker.settings.trust_forwarded_for)
    try:
        if new != str(form.get("repeat", "")):
            raise InvalidInput("The new passwords differ.", code="passwords_differ")
        async with broker.login_limiter.attempt(client, technician.email) as attempt:
            try:
                await broker.accounts.change_password(technician, current, new,
                                                      keep_login=login_id)
            except InvalidInput as error:
                if error.code == "wrong_password":
                    attempt.fail()
                raise
    except InvalidInput as error:
        return aiohttp_jinja2.render_template("password.html", request, {
            "technician": technician, "error": error.code, "min_length": MIN_PASSWORD},
            status=400)
    raise web.HTTPSeeOther("/dashboard")


@routes.get("/dashboard")
async def dashboard(request: web.Request) -> web.Response:
    technician = await page_technician(request)
    broker = get_broker(request.app)
    catalogs = request.app[CATALOGS]
    gettext = catalogs.gettext(catalogs.negotiate(request))
    return aiohttp_jinja2.render_template("dashboard.html", request, {
        "technician": technician,
        "supervisor": await broker.supervision.supervised(technician) is not None,
        "key_lifetime": broker.settings.key_lifetime_seconds,
        "default_language": broker.settings.default_language,
        "sms_setup": _setup_note(broker, Channel.SMS, technician, gettext),
        "email_setup": _setup_note(broker, Channel.EMAIL, technician, gettext),
        # The name a visitor who gave none got, in every language: the dashboard says it
        # in its own.
        "guest_names": sorted({catalogs.gettext(code)("Guest") for code in LANGUAGES}),
    })


def _setup_note(broker: Broker, channel: Channel, technician: Technician,
                gettext: Callable[[str], str]) -> str | None:
    """Empty when the channel works; otherwise the settings to add for admins (who run the
    broker), and whom to ask for everyone else."""
    if broker.deliveries.configured(channel):
        return None
    if technician.is_admin:
        return broker.deliveries.setup_hint(channel, admin=True)
    if channel is Channel.SMS:
        return gettext("SMS sending is not set up; ask your administrator.")
    return gettext("Email sending is not set up; ask your administrator.")


@routes.get("/admin")
async def admin_page(request: web.Request) -> web.Response:
    """Team queues, teams and seats (admins)."""
    technician = await page_technician(request)
    if not technician.is_admin:
        raise Forbidden("Only admins can see this page.")
    broker = get_broker(request.app)
    mail = broker.transcript_mail
    return aiohttp_jinja2.render_template("admin.html", request, {
        "technician": technician, "survey": await broker.survey.config(),
        "closing": await broker.closing.config(),
        "transcript_mail": {"company": await mail.level(COMPANY), "teams": [
            (team, await mail.level(TEAM, team.id)) for team in await broker.teams.all()]}})


@routes.get("/join")
@aiohttp_jinja2.template("join.html")
async def join_form(request: web.Request) -> dict[str, Any]:
    return {"error": None, "key": request.query.get("key", "")}


@routes.post("/join")
async def join(request: web.Request) -> web.Response:
    form = await form_body(request)
    await check_csrf(request, str(form.get("_csrf", "")))
    token = str(form["token"]) if form.get("token") else None
    code = None if token else str(form.get("key", ""))
    catalogs = request.app[CATALOGS]
    gettext = catalogs.gettext(catalogs.negotiate(request))
    # A visitor who gives no name is "Guest" in their own language.
    name = str(form.get("name", "")).strip() or gettext("Guest")
    try:
        redemption = await redeem(request, code=code, token=token, name=name)
    except KeyRejected as rejected:
        if token is None and rejected.code in ("key_malformed", "key_unknown"):
            # A typo: show the form again with the message, so the user can correct it.
            return aiohttp_jinja2.render_template(
                "join.html", request, {"error": rejected.code, "key": code}, status=400
                if rejected.code == "key_malformed" else 404)
        raise
    response = web.HTTPSeeOther(f"/s/{redemption.session_id}")
    response.set_cookie(PARTICIPANT_COOKIE.format(redemption.session_id),
                        redemption.participant_token, httponly=True, samesite="Lax",
                        secure=get_broker(request.app).settings.session_cookie_secure,
                        path=f"/s/{redemption.session_id}")
    response.set_cookie(FILES_COOKIE.format(redemption.session_id),
                        redemption.participant_token, httponly=True, samesite="Lax",
                        secure=get_broker(request.app).settings.session_cookie_secure,
                        path=f"/api/v1/sessions/{redemption.session_id}/files/")
    raise response


@routes.get("/j/{token}")
@aiohttp_jinja2.template("join_link.html")
async def join_link(request: web.Request) -> dict[str, Any]:
    """Check the link without using it up (mail scanners open links too), then join by POST."""
    broker = get_broker(request.app)
    token = request.match_info["token"]
    client = client_address(request, broker.settings.trust_forwarded_for)
    async with broker.redeem_limiter.attempt(client, include_global=False) as attempt:
        try:
            record = await broker.sessions.check_key(token=token)
        except KeyRejected as rejected:
            if rejected.code != "key_malformed":
                attempt.fail()
            raise
    session = await broker.sessions.get(record.session_id)
    return {"token": token, "technician_name": session.technician_name}


@routes.get("/s/{session_id}")
async def chat(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    session_id = request.match_info["session_id"]
    token = request.cookies.get(PARTICIPANT_COOKIE.format(session_id))
    if not token:
        raise Forbidden("This chat belongs to someone else, or your browser lost its ticket. "
                        "Ask your technician for a new key.", code="no_participant")
    try:
        session, actor = await broker.sessions.for_participant(session_id, token)
    except BrokerError as error:
        raise Forbidden(error.message, code="no_participant") from error
    return aiohttp_jinja2.render_template("chat.html", request, {
        "session": session, "participant_token": token, "me": actor,
        "survey": await broker.survey.config(),
        "survey_done": await broker.survey.response(session_id) is not None,
        "copy_offered": broker.deliveries.configured(Channel.EMAIL),
        "copy": await broker.transcript_mail.copy(session_id),
    })


@routes.get("/lang/{lang}")
async def switch_language(request: web.Request) -> web.Response:
    lang = request.match_info["lang"]
    response = web.HTTPSeeOther(local_path(request.query.get("next", "/")))
    if lang in LANGUAGES:
        remember_language(request, response, lang)
    raise response


def local_path(target: str) -> str:
    """`target` if it is a path on this site, else "/": no open redirects. Control
    characters and backslashes are refused outright, since browsers drop or reread them."""
    if (not target.startswith("/") or target.startswith("//")
            or any(ch < " " or ch in "\\\x7f" for ch in target)):
        return "/"
    return target


def remember_language(request: web.Request, response: web.StreamResponse, lang: str) -> None:
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="Lax",
                        secure=get_broker(request.app).settings.session_cookie_secure)


async def template_context(request: web.Request) -> dict[str, Any]:
    """What every template sees: translation, language, CSRF token, product name."""
    from .auth import csrf_token

    if request.path.startswith("/api/v1/") and request.path.endswith("/ws"):
        # aiohttp_jinja2 runs this for every request; a socket renders no template and
        # would hold the context (and a cookie session) for its whole life.
        return {}
    catalogs = request.app[CATALOGS]
    lang = catalogs.negotiate(request)
    return {
        "_": catalogs.gettext(lang),
        "lang": lang,
        "languages": LANGUAGES,
        "csrf_token": await csrf_token(request),  # lazy: a cookie only where it is used
        "product_name": get_broker(request.app).settings.product_name,
        "format_code": format_code,
        # Where the language switcher returns to: this page without its own ?lang=.
        "request_path": str(request.rel_url.without_query_params("lang")),
    }
