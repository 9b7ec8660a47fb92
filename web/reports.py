"""Reports over HTTP: `GET /api/v1/reports/{daily,technicians,teams}` as JSON or CSV
(`?format=csv`), `GET /api/v1/reports/categories` (the closing forms' categories), and
the `/reports` page that draws them (web/static/reports.js).
broker/reports counts; this module only translates (docs/reports.md)."""

from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp import web

from broker.closing import ClosingConfig
from broker.errors import InvalidInput
from broker.reports import FIGURES, Grouping, Report, ReportQuery, ReportRow
from broker.technicians import Scope

from .auth import current_technician
from .scopes import needs
from .state import get_broker

routes = web.RouteTableDef()
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _key(report: Report, row: ReportRow) -> dict[str, Any]:
    grouping = report.query.grouping
    if grouping is Grouping.DAY:
        return {"day": row.day.isoformat() if row.day else None}
    if grouping is Grouping.TECHNICIAN:
        return {"technician_id": row.id, "technician": row.name}
    return {"team_id": row.id, "team": row.name}


def report_json(report: Report) -> dict[str, Any]:
    query = report.query
    return {"grouping": query.grouping.value, "from": query.days.first.isoformat(),
            "to": query.days.last.isoformat(), "time_zone": query.zone_name,
            "team_id": query.team_id, "technician_id": query.technician_id,
            "rows": [{**_key(report, row), **row.figures} for row in report.rows]}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    # A spreadsheet would run a name that starts like a formula (CSV injection).
    return "'" + text if isinstance(value, str) and text.startswith(_FORMULA) else text


def report_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    keys = list(_key(report, report.rows[0]) if report.rows else
                _key(report, ReportRow(None, None, None, {})))
    writer.writerow([*keys, *FIGURES])
    for row in report.rows:
        writer.writerow([_cell(v) for v in (*_key(report, row).values(),
                                            *(row.figures[name] for name in FIGURES))])
    return out.getvalue()


def _query(request: web.Request, grouping: Grouping) -> ReportQuery:
    settings, clock = get_broker(request.app).settings, get_broker(request.app).clock
    return ReportQuery.parse(grouping, request.query, default_zone=settings.business_timezone,
                             now=clock.now())


async def _report(request: web.Request, grouping: Grouping) -> web.Response:
    technician = await current_technician(request)
    broker = get_broker(request.app)
    kind = request.query.get("format", "json")
    if kind not in ("json", "csv"):
        raise InvalidInput("format must be 'json' or 'csv'.")
    query = _query(request, grouping)
    report = await broker.reports.report(technician, query)
    if kind == "json":
        return web.json_response(report_json(report))
    name = f"report-{grouping.value}-{query.days.first}-{query.days.last}.csv"
    return web.Response(text=report_csv(report), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


@routes.get("/api/v1/reports/daily")
@needs(Scope.SESSIONS_READ)
async def daily(request: web.Request) -> web.Response:
    """One row per local day of the range (admins: everyone's or a team's or a
    technician's figures; others: their own)."""
    return await _report(request, Grouping.DAY)


@routes.get("/api/v1/reports/technicians")
@needs(Scope.SESSIONS_READ)
async def per_technician(request: web.Request) -> web.Response:
    """One row per technician with figures in the range (others: their own row)."""
    return await _report(request, Grouping.TECHNICIAN)


@routes.get("/api/v1/reports/teams")
@needs(Scope.SESSIONS_READ)
async def per_team(request: web.Request) -> web.Response:
    """One row per team with figures in the range (admins only)."""
    return await _report(request, Grouping.TEAM)


@routes.get("/api/v1/reports/categories")
@needs(Scope.SESSIONS_READ)
async def per_category(request: web.Request) -> web.Response:
    """The sessions of the range with a closing form, per category, with the share
    resolved (admins: everyone's, a team's or a technician's; others: their own). Each
    category with its names now; a category removed since has none."""
    technician = await current_technician(request)
    broker = get_broker(request.app)
    query = _query(request, Grouping.TECHNICIAN)  # the grouping plays no part here
    rows = await broker.reports.categories(technician, query)
    config = await broker.closing.config()
    return web.json_response({
        "from": query.days.first.isoformat(), "to": query.days.last.isoformat(),
        "time_zone": query.zone_name, "team_id": query.team_id,
        "technician_id": query.technician_id,
        "rows": [{"category": row.category, "label": _label(config, row.category),
                  "sessions": row.sessions, "resolved_share": row.resolved_share}
                 for row in rows]})


def _label(config: ClosingConfig, category_id: str | None) -> dict[str, str] | None:
    """A category's names now (None for none, and for one removed since)."""
    found = None if category_id is None else config.find(category_id)
    return None if found is None else dict(found.label)
