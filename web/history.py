"""The technician's pages about past sessions: "My sessions" (`/sessions`, the history
with search and filters, read from `GET /api/v1/sessions` by web/static/history.js),
a session's readable transcript (`/sessions/{session_id}/transcript`) and the reports
(`/reports`, drawn by web/static/reports.js)."""

from __future__ import annotations

from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from broker.sessions import SessionState

from . import transcript
from .pages import page_technician
from .state import get_broker

routes = web.RouteTableDef()


@routes.get("/sessions")
async def history_page(request: web.Request) -> web.Response:
    technician = await page_technician(request)
    return aiohttp_jinja2.render_template("history.html", request, {
        "technician": technician, "states": [state.value for state in SessionState]})


@routes.get("/reports")
async def reports_page(request: web.Request) -> web.Response:
    """Reports (web/static/reports.js draws them from GET /api/v1/reports/...): admins
    everyone's, others their own figures."""
    technician = await page_technician(request)
    return aiohttp_jinja2.render_template("reports.html", request, {"technician": technician})


@routes.get("/sessions/{session_id}/transcript")
async def transcript_page(request: web.Request) -> web.Response:
    """The transcript for whoever may read it (the session's technicians, also those who
    handed it over or left, one it is offered to, admins), in their language and time
    zone."""
    technician = await page_technician(request)
    readable = await transcript.load(request, get_broker(request.app),
                                     request.match_info["session_id"], technician)
    export = f"/api/v1/sessions/{readable.session.id}/transcript?"
    query = {"tz": readable.zone_id}
    return aiohttp_jinja2.render_template("transcript_page.html", request, {
        **transcript.context(readable), "technician": technician,
        "export_text": export + urlencode({"format": "text", **query}),
        "export_html": export + urlencode({"format": "html", **query})})
