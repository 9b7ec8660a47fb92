"""The technician console's own routes: canned responses and preferences (web/console.py)."""

from __future__ import annotations

from typing import Final

from .build import (
    ID,
    STRING,
    TECHNICIAN,
    TECHNICIAN_CHANGES,
    Schema,
    array,
    empty_response,
    json_body,
    json_response,
    obj,
    operation,
    param,
    path_param,
    ref,
)

_TAGS = ["console"]
_CANNED_ID: Final = path_param("id", "A canned response's id", ID)
_SCOPE: Final = {"type": "string", "enum": ["company", "team", "personal"]}
_FIELDS = json_body(obj(
    {"scope": _SCOPE, "title": {"type": "string", "maxLength": 100}, "text": STRING},
    {"team_id": {"type": ["integer", "null"], "minimum": 0, "maximum": 2**31 - 1},
     "shortcut": {"type": ["string", "null"], "maxLength": 32}}))
_REFUSED = {400: ["invalid_input", "bad_title", "bad_canned_text", "bad_shortcut",
                  "bad_scope", "team_required"],
            404: ["not_found"], 409: ["shortcut_taken", "shelf_full"]}
_PLACEHOLDER = obj({"placeholder": STRING, "meaning": STRING})


def _preferences(method: str) -> Schema:
    return operation(
        f"{method}Preferences", "The caller's console preferences" if method == "get"
        else "Change some of the caller's preferences", tags=_TAGS, method=method,
        security=TECHNICIAN if method == "get" else TECHNICIAN_CHANGES,
        body=None if method == "get" else json_body(ref("PreferenceChanges")),
        responses={200: json_response(ref("Preferences"), "Every field, as stored")},
        errors=None if method == "get" else {400: ["bad_preference"]})


PATHS: Final[dict[str, dict[str, Schema]]] = {
    "/api/v1/canned-responses": {
        "get": operation(
            "listCannedResponses", "The canned responses the caller may use", tags=_TAGS,
            security=TECHNICIAN, method="get",
            parameters=[param("q", "query", {"type": "string", "maxLength": 200},
                              "Only those with this in their title, text or shortcut"),
                        param("scope", "query", _SCOPE, "Only this kind"),
                        param("team_id", "query", ID, "Only this team's")],
            responses={200: json_response(obj({
                "canned_responses": array(ref("CannedResponse")),
                "placeholders": array(_PLACEHOLDER)}), "Ordered by title")},
            errors={400: ["invalid_input", "bad_scope"], 404: ["not_found"]}),
        "post": operation(
            "addCannedResponse", "Add a canned response to a shelf the caller manages",
            tags=_TAGS, security=TECHNICIAN_CHANGES, method="post", body=_FIELDS,
            responses={201: json_response(ref("CannedResponse"), "The new response")},
            errors=_REFUSED),
    },
    "/api/v1/canned-responses/{id}": {
        "put": operation(
            "replaceCannedResponse", "Replace a canned response the caller manages",
            tags=_TAGS, security=TECHNICIAN_CHANGES, method="put", parameters=[_CANNED_ID],
            body=_FIELDS, responses={200: json_response(ref("CannedResponse"), "As stored")},
            errors=_REFUSED),
        "delete": operation(
            "removeCannedResponse", "Remove a canned response the caller manages",
            tags=_TAGS, security=TECHNICIAN_CHANGES, method="delete",
            parameters=[_CANNED_ID], responses={204: empty_response("Removed")},
            errors={400: ["invalid_input"], 404: ["not_found"]}),
    },
    "/api/v1/me/preferences": {"get": _preferences("get"), "put": _preferences("put")},
}
