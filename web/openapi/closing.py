"""The technician's closing form (web/closing.py): its categories, and a session's closing
recorded and read (docs/api.md, Closing form)."""

from __future__ import annotations

from typing import Final

from broker.closing.model import MAX_CATEGORIES, MAX_NAME, MAX_TICKET

from .build import (
    BOOLEAN,
    STRING,
    TECHNICIAN,
    TECHNICIAN_CHANGES,
    TIME,
    Schema,
    array,
    json_body,
    json_response,
    nullable,
    obj,
    operation,
    ref,
)
from .sessions import SESSION, SESSION_ID

_TAGS = ["closing"]
_NAME: Final = {"type": "string", "maxLength": MAX_NAME}
_ID: Final = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,39}$"}
_LABEL: Final = obj({}, {"en": _NAME, "de": _NAME},
                    description="The category's name per language (at least one)")

SCHEMAS: Final[dict[str, Schema]] = {
    "ClosingCategories": obj({
        "categories": {**array(obj({"id": _ID, "label": _LABEL})),
                       "maxItems": MAX_CATEGORIES},
    }, description="The categories the closing form offers, in this order."),
    "Closing": obj({
        "session_id": STRING,
        "category": nullable(obj({"id": _ID, "label": _LABEL})),
        "resolved": nullable(BOOLEAN),
        "ticket": nullable({"type": "string", "maxLength": MAX_TICKET}),
        "recorded_by": obj({"id": nullable({"type": "integer"}), "name": STRING}),
        "recorded_at": TIME,
    }, description="A session's closing as a technician saved it last; null where a "
                   "field was left empty. The category keeps the names it had then."),
}

_NEW_CATEGORIES: Final = obj({}, {
    "categories": {**array(obj({"label": _LABEL}, {"id": _ID})), "maxItems": MAX_CATEGORIES},
}, description="The whole list; a category without an id is new and gets one")
_FORM: Final = obj({}, {
    "category": nullable(_ID), "resolved": nullable(BOOLEAN),
    "ticket": nullable({"type": "string", "maxLength": MAX_TICKET}),
}, description="At least one field; the ticket number is one line of printable text")

PATHS: Final[dict[str, dict[str, Schema]]] = {
    "/api/v1/closing-categories": {
        "get": operation(
            "getClosingCategories", "The closing form's categories", tags=_TAGS,
            security=TECHNICIAN, method="get",
            responses={200: json_response(ref("ClosingCategories"), "The categories")}),
        "put": operation(
            "putClosingCategories", "Replace the closing form's categories (admins)",
            tags=_TAGS, security=TECHNICIAN_CHANGES, method="put",
            body=json_body(_NEW_CATEGORIES),
            responses={200: json_response(ref("ClosingCategories"),
                                          "The categories, as stored")},
            errors={400: ["invalid_categories"]}),
    },
    SESSION + "/closing": {
        "get": operation(
            "getSessionClosing", "A session's closing form", tags=_TAGS,
            security=TECHNICIAN, method="get", parameters=[SESSION_ID],
            responses={200: json_response(obj({"closing": nullable(ref("Closing"))}),
                                          "The closing, or null")}),
        "put": operation(
            "recordSessionClosing",
            "Record (or change) an ended session's category, resolved and ticket number",
            tags=_TAGS, security=TECHNICIAN_CHANGES, method="put",
            parameters=[SESSION_ID], body=json_body(_FORM),
            responses={200: json_response(ref("Closing"),
                                          "Stored, audited and sent as `closing.recorded`")},
            errors={400: ["invalid_closing", "unknown_category", "invalid_ticket",
                          "empty_closing"],
                    409: ["session_not_ended"]}),
    },
}
