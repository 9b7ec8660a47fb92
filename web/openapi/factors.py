"""Second factors: a technician's own (read only here: enrolling and removing take the
browser and a fresh sign-in), the policy, and admins' resets (web/factors_api.py;
docs/api.md, Second factors)."""

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
    obj,
    operation,
    path_param,
    ref,
)

_TAGS = ["technicians"]
_ADMIN = "Admins only."
_REQUIRED: Final[Schema] = {
    "enum": ["off", "admins", "everyone"],
    "description": "Who must have a second factor: nobody, admins, or every technician"}
_POLICY: Final = obj({"required": _REQUIRED})

SCHEMAS: Final[dict[str, Schema]] = {
    "Factors": obj({
        "totp": BOOLEAN, "recovery_codes_left": INTEGER,
        "passkeys": array(obj({"id": INTEGER, "name": STRING, "created_at": TIME,
                               "last_used_at": TIME_OR_NULL})),
        "required": BOOLEAN}, description="The caller's second factors (never secrets); "
        "`required`: the policy requires one of them"),
}

PATHS: Final[dict[str, dict[str, Schema]]] = {
    "/api/v1/me/factors": {"get": operation(
        "myFactors", "The caller's second factors", tags=_TAGS, security=TECHNICIAN,
        method="get", responses={200: json_response(ref("Factors"), "Their factors")})},
    "/api/v1/factor-policy": {
        "get": operation(
            "factorPolicy", "Who must have a second factor", tags=_TAGS,
            security=TECHNICIAN, method="get", description=_ADMIN,
            responses={200: json_response(_POLICY, "The policy")}),
        "put": operation(
            "setFactorPolicy", "Require a second factor of everyone, of admins, or not",
            tags=_TAGS, security=TECHNICIAN_CHANGES, method="put",
            description=_ADMIN + " Technicians without one are led through setting one up "
            "at their next login.", body=json_body(_POLICY),
            responses={200: json_response(_POLICY, "The policy")},
            errors={400: ["invalid_input"]}),
    },
    "/api/v1/technicians/{technician_id}/factors/reset": {"post": operation(
        "resetFactors", "Remove every second factor of a technician; their logins end",
        tags=_TAGS, security=TECHNICIAN_CHANGES, method="post",
        description=_ADMIN + " Never the caller's own (403 `own_factors`): another admin "
        "must do that.", parameters=[path_param("technician_id", "A technician's id", ID)],
        responses={200: json_response(ref("Technician"), "The technician")},
        errors={400: ["invalid_input"], 403: ["own_factors"], 404: ["not_found"]})},
}
