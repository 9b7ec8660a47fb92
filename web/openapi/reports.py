"""Reports (web/reports.py; docs/api.md, Reports; docs/reports.md)."""

from __future__ import annotations

from typing import Final

from broker.reports import AVERAGES, FIGURES

from .build import (
    ID,
    INTEGER,
    STRING,
    TECHNICIAN,
    Schema,
    array,
    json_response,
    nullable,
    obj,
    operation,
    param,
    ref,
)

_TAGS = ["reports"]
_NUMBER: Final[Schema] = {"type": "number"}
_FIGURES: Final[dict[str, Schema]] = {
    name: nullable(_NUMBER) if name in AVERAGES else {"type": "integer", "minimum": 0}
    for name in FIGURES}
_KEYS: Final[dict[str, dict[str, Schema]]] = {
    "daily": {"day": {"type": "string", "format": "date"}},
    "technicians": {"technician_id": nullable(INTEGER), "technician": nullable(STRING)},
    "teams": {"team_id": INTEGER, "team": STRING},
}
_ROW_NAMES: Final = {"daily": "ReportDay", "technicians": "ReportTechnician",
                     "teams": "ReportTeam"}

SCHEMAS: Final[dict[str, Schema]] = {
    _ROW_NAMES[kind]: obj({**keys, **_FIGURES}, description=(
        "Counts, and averages in seconds (null where nothing was measured); rating 1-5, "
        "solved_share and resolved_share 0-1 (docs/reports.md)"))
    for kind, keys in _KEYS.items()}


def _operation(kind: str, operation_id: str, summary: str, who: str) -> Schema:
    parameters = [
        param("from", "query", {"type": "string", "format": "date"},
              "First day (default: 29 days before `to`)"),
        param("to", "query", {"type": "string", "format": "date"},
              "Last day, included (default: today)"),
        param("tz", "query", STRING, "IANA time zone the days are counted in "
              "(default: the broker's business time zone)"),
        param("format", "query", {"type": "string", "enum": ["json", "csv"]},
              "csv: the same rows as a CSV attachment")]
    if kind != "teams":
        parameters += [param("team_id", "query", ID, "Only this team's figures (admins)"),
                       param("technician_id", "query", ID, "Only this technician's figures")]
    body = obj({"grouping": STRING, "from": STRING, "to": STRING, "time_zone": STRING,
                "team_id": nullable(INTEGER), "technician_id": nullable(INTEGER),
                "rows": array(ref(_ROW_NAMES[kind]))})
    response = json_response(body, "The report")
    response["content"]["text/csv"] = {"schema": STRING}
    response["headers"] = {"Content-Disposition": {
        "schema": STRING, "description": "With format=csv: an attachment"}}
    return {"get": operation(
        operation_id, summary, tags=_TAGS, security=TECHNICIAN, method="get",
        description=who, parameters=parameters, responses={200: response},
        errors={400: ["invalid_input", "invalid_time", "invalid_range", "invalid_time_zone"]})}


def _categories() -> Schema:
    name = {"type": "string"}
    row = obj({"category": nullable(STRING),
               "label": nullable(obj({}, {"en": name, "de": name})),
               "sessions": {"type": "integer", "minimum": 0},
               "resolved_share": nullable(_NUMBER)},
              description="A category of the closing forms (null: none chosen) with its "
                          "names now (null once removed), its sessions and the share "
                          "resolved, 0-1")
    body = obj({"from": STRING, "to": STRING, "time_zone": STRING,
                "team_id": nullable(INTEGER), "technician_id": nullable(INTEGER),
                "rows": array(row)})
    parameters = [
        param("from", "query", {"type": "string", "format": "date"},
              "First day (default: 29 days before `to`)"),
        param("to", "query", {"type": "string", "format": "date"},
              "Last day, included (default: today)"),
        param("tz", "query", STRING, "IANA time zone the days are counted in "
              "(default: the broker's business time zone)"),
        param("team_id", "query", ID, "Only this team's sessions (admins)"),
        param("technician_id", "query", ID, "Only this technician's sessions")]
    return {"get": operation(
        "reportCategories", "Sessions per category of their closing forms", tags=_TAGS,
        security=TECHNICIAN, method="get",
        description="Admins: everyone's, a team's or a technician's; others: their own.",
        parameters=parameters, responses={200: json_response(body, "The categories")},
        errors={400: ["invalid_input", "invalid_time", "invalid_range", "invalid_time_zone"]})}


PATHS: Final[dict[str, dict[str, Schema]]] = {
    "/api/v1/reports/categories": _categories(),
    "/api/v1/reports/daily": _operation(
        "daily", "reportDaily", "Figures per local day",
        "Admins: everyone's, a team's or a technician's; others: their own."),
    "/api/v1/reports/technicians": _operation(
        "technicians", "reportTechnicians", "Figures per technician",
        "Admins: every technician; others: their own row."),
    "/api/v1/reports/teams": _operation(
        "teams", "reportTeams", "Figures per team", "Admins only."),
}
