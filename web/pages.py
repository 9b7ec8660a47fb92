"""The HTML pages: technician login and dashboard, the end user's join and chat pages."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from broker.delivery import Channel
from broker.errors import BrokerError, Forbidden, KeyRejected, Unauthenticated
from broker.handoff.logins import SeatsTaken
from broker.keys import format_code
from broker.technicians import Technician

from .api import redeem
from .auth import check_csrf, client_address, cookie_technician, log_in, log_out
from .i18n import LANG_COOKIE, LANGUAGES
from .state import CATALOGS, get_broker

routes = web.RouteTableDef()
PARTICIPANT_COOKIE = "sb_participant_{}"
PENDING_KEY = "waiting_for_seat"  # [technician id, until]
# The same participant token, sent only to the session's file API (plain download links).
FILES_COOKIE = "sb_files_{}"


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    technician = await cookie_technician(request)
    raise web.HTTPSeeOther("/dashboard" if technician else "/join")


@routes.get("/login")
@aiohttp_jinja2.template("login.html")
async def login_form(request: web.Request) -> dict[str, Any]:
    return {"error": None, "email": ""}


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    form = await request.post()
    await check_csrf(request, str(form.get("_csrf", "")))
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    client = client_address(request, broker.settings.trust_forwarded_for)
    async with broker.login_limiter.attempt(client) as attempt:
        try:
            technician = await broker.technicians.login(email, password)
        except Unauthenticated as error:
            attempt.fail()
            return aiohttp_jinja2.render_template(
                "login.html", request, {"error": error.code, "email": email}, status=401)
    return await _log_in_or_show_seats(request, technician)


async def _log_in_or_show_seats(request: web.Request,
                                 technician: Technician) -> web.Response:
    try:
        await log_in(request, technician)
    except SeatsTaken as taken:
        # The password was right: remember who is waiting for a seat, for a few minutes.
        session = await get_session(request)
        session[PENDING_KEY] = [technician.id, get_broker(request.app).clock.now() + 300]
        return aiohttp_jinja2.render_template("seats.html", request, {
            "technician": technician, "logins": taken.logins,
            "seats": get_broker(request.app).settings.seats}, status=409)
    raise web.HTTPSeeOther("/dashboard")


@routes.post("/login/seat")
async def take_seat(request: web.Request) -> web.Response:
    """After "all seats are taken": try again, or (admins) end another login first."""
    broker = get_broker(request.app)
    form = await request.post()
    await check_csrf(request, str(form.get("_csrf", "")))
    session = await get_session(request)
    pending = session.get(PENDING_KEY)
    if not (isinstance(pending, list) and len(pending) == 2
            and broker.clock.now() < float(pending[1])):
        raise web.HTTPSeeOther("/login")
    technician = await broker.technicians.get(int(pending[0]))
    end = str(form.get("end", ""))
    if end:
        if not technician.is_admin:
            raise Forbidden("Only an admin can end another technician's login.")
        await broker.logins.end(end, "ended_by_admin", by_admin=True)
    return await _log_in_or_show_seats(request, technician)


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    form = await request.post()
    await check_csrf(request, str(form.get("_csrf", "")))
    await log_out(request)
    raise web.HTTPSeeOther("/login")


@routes.get("/dashboard")
async def dashboard(request: web.Request) -> web.Response:
    technician = await cookie_technician(request)
    if technician is None:
        raise web.HTTPSeeOther("/login")
    broker = get_broker(request.app)
    return aiohttp_jinja2.render_template("dashboard.html", request, {
        "technician": technician,
        "key_lifetime": broker.settings.key_lifetime_seconds,
        "default_language": broker.settings.default_language,
        # Empty when the channel works; otherwise what an operator must configure.
        "sms_setup": broker.deliveries.setup_hint(Channel.SMS),
        "email_setup": broker.deliveries.setup_hint(Channel.EMAIL),
    })


@routes.get("/admin")
async def admin_page(request: web.Request) -> web.Response:
    """Team queues, teams and seats (admins)."""
    technician = await cookie_technician(request)
    if technician is None:
        raise web.HTTPSeeOther("/login")
    if not technician.is_admin:
        raise Forbidden("Only admins can see this page.")
    return aiohttp_jinja2.render_template("admin.html", request, {"technician": technician})


@routes.get("/join")
@aiohttp_jinja2.template("join.html")
async def join_form(request: web.Request) -> dict[str, Any]:
    return {"error": None, "key": request.query.get("key", "")}


@routes.post("/join")
async def join(request: web.Request) -> web.Response:
    form = await request.post()
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
