"""Technicians: the roster everyone reads, and their administration by admins
(web/technicians.py; docs/api.md, Technicians)."""

from __future__ import annotations

from typing import Final

from .build import (
    BOOLEAN,
    ID,
    INTEGER,
    STRING,
    TECHNICIAN,
    TECHNICIAN_CHANGES,
    TIME,
    TIME_OR_NULL,
    Schema,
    array,
    json_body,
    json_response,
    listing,
    obj,
    operation,
    path_param,
    ref,
)

_TAGS = ["technicians"]
_ADMIN = "Admins only."
_TECHNICIAN_ID: Final = path_param("technician_id", "A technician's id", ID)
_SEEN_BY_ALL: Final[dict[str, Schema]] = {
    "id": INTEGER, "name": STRING, "is_admin": BOOLEAN,
    "presence": {"enum": ["online", "away", "offline"]}, "teams": array(STRING)}
_SEEN_BY_ADMINS: Final[dict[str, Schema]] = {
    "email": STRING, "disabled": BOOLEAN, "disabled_at": TIME_OR_NULL,
    "must_change_password": BOOLEAN, "second_factor": BOOLEAN, "team_ids": array(INTEGER),
    "lead_team_ids": array(INTEGER),
    "created_at": TIME}
_WITH_PASSWORD: Final = obj({**_SEEN_BY_ALL, **_SEEN_BY_ADMINS, "one_time_password": {
    "type": "string", "description": "Shown only here; changed at the first login"}})

SCHEMAS: Final[dict[str, Schema]] = {
    "Technician": obj(_SEEN_BY_ALL, _SEEN_BY_ADMINS,
                      description="A technician; the account fields only to admins."),
}

PATHS: Final[dict[str, dict[str, Schema]]] = {
    "/api/v1/technicians": {
        "get": operation(
            "listTechnicians", "Every technician with availability and teams", tags=_TAGS,
            security=TECHNICIAN, method="get",
            responses={200: json_response(listing("technicians", ref("Technician")),
                                          "Online first; disabled ones to admins only")}),
        "post": operation(
            "addTechnician", "Add a technician with a one-time password", tags=_TAGS,
            security=TECHNICIAN_CHANGES, method="post", description=_ADMIN,
            body=json_body(obj({"email": STRING, "name": STRING}, {"admin": BOOLEAN})),
            responses={201: json_response(_WITH_PASSWORD, "The technician")},
            errors={400: ["invalid_input", "invalid_email"], 409: ["email_taken"]}),
    },
    "/api/v1/technicians/{technician_id}": {"patch": operation(
        "changeTechnician", "Rename, make admin or not, disable or enable", tags=_TAGS,
        security=TECHNICIAN_CHANGES, method="patch", description=_ADMIN,
        parameters=[_TECHNICIAN_ID],
        body=json_body(obj({}, {"name": STRING, "admin": BOOLEAN, "disabled": BOOLEAN})),
        responses={200: json_response(ref("Technician"), "The technician")},
        errors={400: ["invalid_input"], 404: ["not_found"], 409: ["last_admin"]})},
    "/api/v1/technicians/{technician_id}/password-reset": {"post": operation(
        "resetPassword", "A new one-time password; the technician's logins end", tags=_TAGS,
        security=TECHNICIAN_CHANGES, method="post", description=_ADMIN,
        parameters=[_TECHNICIAN_ID],
        responses={200: json_response(_WITH_PASSWORD, "The technician")},
        errors={400: ["invalid_input"], 404: ["not_found"], 409: ["technician_disabled"]})},
}
