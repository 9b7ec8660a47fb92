"""`create_app(settings)`: the whole broker as one aiohttp application."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import WSCloseCode, web
from aiohttp_session import setup as setup_cookie_sessions
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet

from broker.bus import EventBus
from broker.clock import Clock
from broker.core import Broker
from broker.hashing import load_or_create_secret
from broker.settings import Settings
from broker.transcripts import TEMPLATES as TRANSCRIPT_TEMPLATES

from . import (
    agent,
    api,
    audit,
    closing,
    console,
    dashboard,
    factors,
    factors_api,
    files,
    handoff,
    history,
    intake,
    ops,
    pages,
    passkeys,
    portal,
    reports,
    rtc,
    signouts,
    sso,
    supervision,
    survey,
    technicians,
    tokens,
    transcriptmail,
    typists,
    watch,
    watch_relay,
    webhooks,
    ws,
)
from .auth import SESSION_COOKIE, audit_middleware
from .errors import CLIENT_FAULTS, error_middleware, text_middleware
from .i18n import LANG_COOKIE, LANGUAGES, Catalogs
from .linkify import inert, linkify
from .openapi import setup as setup_openapi
from .state import BROKER, CATALOGS, SOCKETS, get_broker

log = logging.getLogger(__name__)
_HERE = Path(__file__).parent
_CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors {}; "
        "base-uri 'none'; form-action 'self'")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: security headers on every response, whether a handler returned
    it, raised it (redirects, errors) or sent it itself (file downloads, whose bodies may
    leave from a thread); and a page opened with ?lang= keeps that language for the pages
    that follow. (A hook, not a middleware: it sees responses whose headers have left
    before a middleware would get them back, and holds no frame while a WebSocket lives.)
    Not a WebSocket's handshake (101): it has no body to sniff, frame or cache, and what
    the hook adds stays with the socket for its life, about 1.5 KiB each
    (docs/benchmarks.md)."""
    if isinstance(response, web.WebSocketResponse):
        return
    lang = request.query.get("lang")
    if lang in LANGUAGES and request.cookies.get(LANG_COOKIE) != lang:
        pages.remember_language(request, response, lang)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    # Only the pages the chat button embeds may be framed, and only by widget_origins.
    ancestors = (get_broker(request.app).settings.widget_origin_list
                 if response.get(portal.EMBEDDABLE) else ())
    if not ancestors:
        response.headers.setdefault("X-Frame-Options", "DENY")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy",
                                    _CSP.format(" ".join(ancestors) or "'none'"))
    if response.content_type == "text/html" or request.path.startswith("/api/"):
        # Pages and API answers carry tokens, keys and transcripts: never cache them.
        response.headers.setdefault("Cache-Control", "no-store")


async def _close_sockets(app: web.Application) -> None:
    """Clients reconnect by themselves after GOING_AWAY and resume by sequence number."""
    sockets: weakref.WeakSet[web.WebSocketResponse] = app[SOCKETS]
    for socket in set(sockets):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def create_app(settings: Settings, *, clock: Clock | None = None,
               bus: EventBus | None = None) -> web.Application:
    app = web.Application(middlewares=[error_middleware, audit_middleware],
                          client_max_size=64 * 1024)
    logging.getLogger("aiohttp.server").addFilter(CLIENT_FAULTS)  # once, however many apps
    app.on_response_prepare.append(security_headers)
    app[CATALOGS] = Catalogs(settings.default_language)
    app[SOCKETS] = weakref.WeakSet()
    cookie_key = load_or_create_secret(settings.data_dir, "cookie-secret")
    setup_cookie_sessions(app, EncryptedCookieStorage(
        Fernet(base64.urlsafe_b64encode(cookie_key)), cookie_name=SESSION_COOKIE, httponly=True,
        samesite="Lax", secure=settings.session_cookie_secure, max_age=12 * 3600))
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(_HERE / "templates"),
                                         jinja2.FileSystemLoader(TRANSCRIPT_TEMPLATES)]),
        autoescape=jinja2.select_autoescape(["html"]),
        context_processors=[pages.template_context])
    app.middlewares.append(text_middleware)  # after aiohttp_jinja2's own
    env.filters["linkify"] = linkify
    env.filters["inert"] = inert

    async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
        broker = await Broker.open(settings, clock, bus)
        app[BROKER] = broker
        # Nobody is connected to a broker that just started: the sessions whose end users
        # were connected to it wait for their reconnect, with a fresh window.
        await broker.go_live()
        tasks = [asyncio.create_task(broker.sweep_forever(), name="sweeper"),
                 asyncio.create_task(broker.deliveries.run_forever(), name="delivery-worker"),
                 asyncio.create_task(broker.checkpoint_forever(), name="sqlite-checkpoints")]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await broker.close()

    app.cleanup_ctx.append(broker_ctx)
    app.on_shutdown.append(_close_sockets)
    app.add_routes(pages.routes)
    app.add_routes(factors.routes)
    app.add_routes(factors_api.routes)
    app.add_routes(passkeys.routes)
    app.add_routes(api.routes)
    app.add_routes(handoff.routes)
    app.add_routes(technicians.routes)
    app.add_routes(ops.routes)
    app.add_routes(dashboard.routes)
    app.add_routes(console.routes)
    app.add_routes(history.routes)
    app.add_routes(supervision.routes)
    app.add_routes(watch.routes)
    app.add_routes(webhooks.routes)
    app.add_routes(audit.routes)
    app.add_routes(survey.routes)
    app.add_routes(closing.routes)
    app.add_routes(tokens.routes)
    app.add_routes(transcriptmail.routes)
    app.add_routes(reports.routes)
    app[ws.FRAME_HANDLERS] = ws.FrameHandlers()
    ws.setup(app)
    signouts.setup(app)
    typists.setup(app)
    agent.setup(app)
    rtc.setup(app)
    watch_relay.setup(app)
    files.setup(app)
    sso.setup(app)
    intake.setup(app)
    portal.setup(app)
    setup_openapi(app)
    app.router.add_static("/static", _HERE / "static", append_version=True, name="static")
    env.globals["static"] = lambda filename: str(
        app.router["static"].url_for(filename=filename))
    return app
