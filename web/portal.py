"""The customer-facing pages of customers' requests (broker/intake, docs/portal.md): the
support portal with its pre-chat form, the chat as a website's chat button embeds it,
the button itself (`/widget.js`), and CORS for the sites listed in `widget_origins`.

A page another site may frame marks its response `EMBEDDABLE`; web/app.py then lists
`widget_origins` as its frame-ancestors instead of 'none'. The embedded chat page is
rendered without knowing who is asking: a framed page gets no cookies (they would be
third-party), so its script reads the participant token from the URL fragment, which
never reaches the server, and speaks with it as the chat page does (hello, bearer).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Final

import aiohttp_jinja2
import jinja2
from aiohttp import web

from broker.delivery import Channel
from broker.errors import Forbidden, InvalidInput, NotFound
from broker.handoff import Team
from broker.intake.form import HONEYPOT, NAME_LENGTH, FieldKind, FormField
from broker.intake.model import Severity

from .i18n import LANGUAGES, Catalogs
from .scopes import NO_TOKEN, needs
from .state import BROKER, CATALOGS, get_broker

routes = web.RouteTableDef()
EMBEDDABLE: Final = web.ResponseKey("embeddable", bool)
# The public APIs a listed site may call from its own pages.
CORS_PATHS: Final = frozenset({"/api/v1/availability", "/api/v1/requests"})
_WIDGET = Path(__file__).parent / "static" / "widget.js"
_WIDGET_JS: Final = web.AppKey("widget_js", str)
# The longest answers the browser lets people type, by kind (the server checks again).
_LIMITS = {FieldKind.EMAIL: 254, FieldKind.PHONE: 40}


@dataclasses.dataclass(frozen=True, slots=True)
class PortalField:
    """One field of the form as the portal shows it."""

    name: str
    kind: str
    required: bool
    label: str | None  # in the page's language; None: a built-in field's own (the page's)
    choices: tuple[str, ...]
    maxlength: int


@dataclasses.dataclass(frozen=True, slots=True)
class EmbeddedSession:
    """What the embedded chat page knows before its script has said hello: the session's
    id only (whoever owns it, the welcome frame tells)."""

    id: str
    technician_name: None = None


@routes.get("/support")
@routes.get("/support/{team}")
async def portal(request: web.Request) -> web.Response:
    """The pre-chat form; ?embed=1: as the chat button's panel shows it (framed)."""
    broker = get_broker(request.app)
    embedded = request.query.get("embed") == "1"
    teams = await broker.teams.all()
    ref = request.match_info.get("team")
    team: Team | None = teams[0] if len(teams) == 1 else None
    if ref is not None:
        try:
            team = await broker.intake.team(ref)
        except InvalidInput as error:
            raise NotFound("There is no such team.") from error
    config = await broker.intake.form()
    settings = broker.settings
    lang = request.app[CATALOGS].negotiate(request)
    fields = []
    for field in config.fields:
        if field.name == "team" or not field.enabled:
            continue  # the team is chosen apart (or given by the address)
        fields.append(_portal_field(field, lang, settings.intake_max_field_chars,
                                    settings.intake_max_text_chars))
    found = {item.id: await broker.intake.availability(item) for item in teams}
    online = {team_id: available.online for team_id, available in found.items()}
    # Seconds a new request would wait, where the broker can tell (online teams only).
    waits = {team_id: available.estimated_wait_seconds for team_id, available in found.items()
             if available.online and available.estimated_wait_seconds is not None}
    response = aiohttp_jinja2.render_template("portal.html", request, {
        "embedded": embedded, "team": team, "teams": teams, "fields": fields,
        "online": online, "waits": waits, "honeypot": HONEYPOT, "severities": list(Severity),
        "default_severity": config.default_severity.value,
        "team_choice": team is None and len(teams) > 1,
    })
    response[EMBEDDABLE] = embedded
    return response


def _portal_field(field: FormField, lang: str, short_max: int, long_max: int) -> PortalField:
    labels = dict(field.label)
    label = labels.get(lang) or labels.get("en") or next(iter(labels.values()), None)
    limit = _LIMITS.get(field.kind, long_max if field.kind is FieldKind.LONG_TEXT
                        else NAME_LENGTH if field.name == "name" else short_max)
    return PortalField(field.name, field.kind.value, field.required,
                       label if label or field.built_in else field.name, field.choices, limit)


@routes.get("/s/{session_id}/embed")
async def embedded_chat(request: web.Request) -> web.Response:
    """The chat in the chat button's panel: the participant token comes in the fragment."""
    response = aiohttp_jinja2.render_template("portal_chat.html", request, {
        "session": EmbeddedSession(request.match_info["session_id"]),
        "participant_token": "", "embedded": True,
        # Whether its end user answered already, the survey's answer tells (survey_done).
        "survey": await get_broker(request.app).survey.config(), "survey_done": False,
        "copy_offered": get_broker(request.app).deliveries.configured(Channel.EMAIL),
        "copy": None,
    })
    response[EMBEDDABLE] = True
    return response


def _(message: str) -> str:
    """Marks `message` for the catalogs (pybabel extracts it); translated where served."""
    return message


# The chat button's words (web/static/widget.js), in every language where it is served.
WIDGET_TEXT: Final = {
    "chat": _("Chat with us"), "message": _("Leave a message"),
    "resume": _("Back to your chat"), "unread": _("New message"),
    "close": _("Close the chat"),
    "title": _("Support chat"), "online": _("Online"), "offline": _("Offline"),
}
_TEXT_SLOT = "/*TEXT*/{}"


@routes.get("/widget.js")
async def widget(request: web.Request) -> web.Response:
    """The chat button, at an address short enough for the snippet admins copy."""
    return web.Response(text=request.app[_WIDGET_JS], content_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=300"})


def _widget_source(catalogs: Catalogs) -> str:
    """widget.js with its words in every language put in (it picks the host page's)."""
    text = {lang: {key: catalogs.gettext(lang)(words) for key, words in WIDGET_TEXT.items()}
            for lang in LANGUAGES}
    source = _WIDGET.read_text(encoding="utf-8")
    return source.replace(_TEXT_SLOT, json.dumps(text, ensure_ascii=False), 1)


@routes.route("OPTIONS", "/api/v1/requests")
@needs(NO_TOKEN)
async def preflight(request: web.Request) -> web.Response:
    """CORS preflight of a listed site's POST (its JSON body makes the browser ask)."""
    if request.headers.get("Origin") not in _allowed(request.app):
        raise Forbidden("This site may not send requests here (widget_origins).",
                        code="origin_not_allowed")
    return web.Response(status=204, headers={
        "Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "600"})


def _allowed(app: web.Application) -> tuple[str, ...]:
    return get_broker(app).settings.widget_origin_list


async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the public APIs answer the sites of `widget_origins` (no
    credentials: the browser sends no cookies along, and may read only the answer)."""
    if request.path not in CORS_PATHS or BROKER not in request.app:
        return
    response.headers.add("Vary", "Origin")
    origin = request.headers.get("Origin")
    if origin is not None and origin in _allowed(request.app):
        response.headers["Access-Control-Allow-Origin"] = origin


# What the admin page's section (_intake_admin.html) shows of the settings.


@jinja2.pass_context
def _public_url(context: Any) -> str:
    """The broker's public address, for the snippet admins copy into their sites."""
    return get_broker(context["app"]).settings.base_url


@jinja2.pass_context
def _widget_origins(context: Any) -> tuple[str, ...]:
    return get_broker(context["app"]).settings.widget_origin_list


@jinja2.pass_context
def _business_hours(context: Any) -> tuple[str, str]:
    """("mon, tue, … 09:00-17:00", "Europe/Berlin"): the hours response targets count."""
    settings = get_broker(context["app"]).settings
    days = ", ".join(day.strip() for day in settings.business_days.split(",") if day.strip())
    return f"{days} {settings.business_hours}", settings.business_timezone


def setup(app: web.Application) -> None:
    app[_WIDGET_JS] = _widget_source(app[CATALOGS])
    app.on_response_prepare.append(cors_headers)
    aiohttp_jinja2.get_env(app).globals.update(
        public_url=_public_url, widget_origins=_widget_origins, business_hours=_business_hours)
    app.add_routes(routes)
