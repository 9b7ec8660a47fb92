"""Passkey ceremonies in the browser (broker/factors/passkeys.py): web/static/passkeys.js
asks for the options (JSON, with the CSRF header), lets the browser make or use the
passkey, and posts its answer as a form, whose answer is a page like every other sign-in
step: the recovery codes, the dashboard, or the form again with what went wrong."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from broker.errors import InvalidInput
from broker.factors import FreshSignInRequired, PasskeyRejected
from broker.inputs import whole_number

from . import factor_login
from .auth import check_csrf, client_address
from .factors import SECURITY, actor_of, confirm_first, factor_page, read_form, recovery_page
from .pages import finish_login
from .state import get_broker

routes = web.RouteTableDef()


def _options(body: str) -> web.Response:
    return web.Response(text=body, content_type="application/json")


@routes.post("/account/passkeys/options")
async def registration_options(request: web.Request) -> web.Response:
    await check_csrf(request)
    actor = await actor_of(request)
    try:
        return _options(await get_broker(request.app).passkeys.registration_options(
            actor.technician, actor.signed_in_at))
    except FreshSignInRequired as error:
        return web.json_response({"error": error.code,
                                  "location": confirm_first(actor).location}, status=403)


@routes.post("/account/passkeys")
async def register(request: web.Request) -> web.Response:
    form = await read_form(request)
    actor = await actor_of(request)
    try:
        fresh = await get_broker(request.app).passkeys.register(
            actor.technician, str(form.get("credential", "")), str(form.get("name", "")),
            actor.signed_in_at)
    except FreshSignInRequired:
        raise confirm_first(actor) from None
    except (PasskeyRejected, InvalidInput) as error:
        raise web.HTTPSeeOther(f"{SECURITY}?error={error.code}") from None
    if actor.enrolling:
        await factor_login.mark_passed(request)
    return recovery_page(request, actor, fresh)


@routes.post("/account/passkeys/{id}/remove")
async def remove(request: web.Request) -> web.Response:
    await read_form(request)
    actor = await actor_of(request)
    try:
        await get_broker(request.app).passkeys.remove(
            actor.technician, whole_number(request.match_info["id"], "id"),
            actor.signed_in_at)
    except FreshSignInRequired:
        raise confirm_first(actor) from None
    raise web.HTTPSeeOther(SECURITY)


@routes.post("/login/passkey/options")
async def sign_in_options(request: web.Request) -> web.Response:
    """For the second step of a login, that technician's passkeys; otherwise for signing
    in with a passkey alone."""
    await check_csrf(request)
    broker = get_broker(request.app)
    waiting = await factor_login.pending(request, factor_login.VERIFY)
    return _options(await broker.passkeys.sign_in_options(
        None if waiting is None else waiting.technician,
        client_address(request, broker.settings.trust_forwarded_for)))


@routes.post("/login/passkey")
async def sign_in(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    form = await read_form(request)
    waiting = await factor_login.pending(request, factor_login.VERIFY)
    technician = None if waiting is None else waiting.technician
    try:
        technician_id = await broker.passkeys.sign_in(str(form.get("credential", "")),
                                                      technician)
    except PasskeyRejected as error:
        if technician is not None:
            return await factor_page(request, technician, error.code, 401)
        return aiohttp_jinja2.render_template(
            "login.html", request, {"error": error.code, "email": ""}, status=401)
    found = technician or await broker.technicians.get(technician_id)
    if found.disabled:
        return aiohttp_jinja2.render_template(
            "login.html", request, {"error": "technician_disabled", "email": ""}, status=403)
    return await finish_login(request, found)
