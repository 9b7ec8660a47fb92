"""API tokens: one's own, and for admins everybody's (web/tokens.py; docs/api.md, API
tokens)."""

from __future__ import annotations

from typing import Final

from broker.technicians import Scope

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
    empty_response,
    json_body,
    json_response,
    listing,
    nullable,
    obj,
    operation,
    param,
    path_param,
    ref,
    values,
)

_TAGS = ["tokens"]
_FIELDS: Final[dict[str, Schema]] = {
    "id": INTEGER, "name": STRING, "scopes": array(values(Scope)),
    "technician": obj({"id": INTEGER, "name": nullable(STRING)}),
    "created_at": TIME, "expires_at": TIME_OR_NULL, "expired": BOOLEAN,
    "last_used_at": TIME_OR_NULL}

SCHEMAS: Final[dict[str, Schema]] = {
    "ApiToken": obj(_FIELDS, description="An API token as listed (never the token)."),
}

PATHS: Final[dict[str, dict[str, Schema]]] = {
    "/api/v1/tokens": {
        "get": operation(
            "listTokens", "API tokens not revoked, newest first", tags=_TAGS,
            security=TECHNICIAN, method="get",
            description="The caller's own; admins may ask for one technician's or all.",
            parameters=[
                param("technician_id", "query", ID, "This technician's (admins, or one's "
                      "own id)"),
                param("all", "query", {"enum": ["true"]}, "Everybody's (admins)")],
            responses={200: json_response(listing("tokens", ref("ApiToken")), "The tokens")},
            errors={400: ["invalid_input"]}),
        "post": operation(
            "createToken", "A new API token of the caller's own", tags=_TAGS,
            security=TECHNICIAN_CHANGES, method="post",
            description="With an API token: no scope it lacks and no later expiry.",
            body=json_body(obj({"scopes": array(values(Scope))}, {
                "name": STRING, "expires_at": {**STRING, "description": "ISO 8601"},
                "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 3650}})),
            responses={201: json_response(obj({**_FIELDS, "token": {
                "type": "string", "description": "Shown only here"}}), "The token")},
            errors={400: ["invalid_input", "invalid_scope", "invalid_expiry"],
                    403: ["insufficient_scope", "technician_disabled"]}),
    },
    "/api/v1/tokens/{token_id}": {"delete": operation(
        "revokeToken", "Revoke a token: it answers 401 from now on", tags=_TAGS,
        security=TECHNICIAN_CHANGES, method="delete",
        description="One's own; admins anyone's.",
        parameters=[path_param("token_id", "The token's id", ID)],
        responses={204: empty_response("Revoked")},
        errors={400: ["invalid_input"], 404: ["not_found"]})},
}
