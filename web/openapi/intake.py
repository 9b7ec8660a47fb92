"""Customers who start the contact (web/intake.py): the pre-chat form, availability,
requests and messages (docs/api.md, Customers' requests; docs/portal.md)."""

from __future__ import annotations

from typing import Final

from broker.intake.form import FieldKind
from broker.intake.model import RequestKind, RequestStatus, Severity

from .build import (
    BOOLEAN,
    ID,
    INTEGER,
    PARTICIPANT,
    PUBLIC,
    STRING,
    TECHNICIAN,
    TECHNICIAN_CHANGES,
    TIME,
    TIME_OR_NULL,
    Schema,
    array,
    empty_response,
    error_object,
    header,
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
from .components import SESSION_FIELDS
from .sessions import SESSION, SESSION_ID

_TAGS = ["intake"]
_REQUEST_ID: Final = path_param("request_id", "A request's id")
_WAIT: Final = nullable({"type": "integer", "minimum": 0})
_FIELD_REFUSED: Final = ["invalid_field", "field_required", "field_too_long",
                         "invalid_choice", "invalid_email", "invalid_phone", "unknown_field",
                         "unknown_team", "invalid_input"]

SCHEMAS: Final[dict[str, Schema]] = {
    "IntakeForm": obj({
        "fields": array(obj({
            "name": STRING, "kind": values(FieldKind), "required": BOOLEAN,
            "enabled": BOOLEAN, "built_in": BOOLEAN,
            "label": {"type": "object", "additionalProperties": STRING}},
            {"choices": array(STRING)})),
        "severities": array(obj({"level": values(Severity), "target_seconds": INTEGER,
                                 "business_hours": BOOLEAN})),
        "default_severity": values(Severity),
    }, {"teams": array(obj({"team_id": INTEGER, "name": STRING, "slug": STRING}))},
        description="The pre-chat form; `teams` only in answers."),
    "Request": obj({
        "request_id": STRING, "kind": values(RequestKind), "status": values(RequestStatus),
        "team_id": nullable(INTEGER), "session_id": nullable(STRING),
        "severity": values(Severity), "name": STRING, "email": nullable(STRING),
        "phone": nullable(STRING), "description": STRING,
        "fields": {"type": "object", "additionalProperties": STRING},
        "language": STRING, "created_at": TIME, "due_at": TIME, "alert_at": TIME,
        "remaining_seconds": _WAIT, "first_response_at": TIME_OR_NULL,
        "alerted_at": TIME_OR_NULL, "breached_at": TIME_OR_NULL, "closed_at": TIME_OR_NULL,
        "accepted_by": nullable(INTEGER), "answered_at": TIME_OR_NULL,
        "answered_by": nullable(INTEGER), "answer_session_id": nullable(STRING),
    }, description="A customer's request as its team's technicians see it."),
}

_PLACE = obj({"request_id": STRING, "status": values(RequestStatus),
              "session_id": nullable(STRING), "severity": values(Severity),
              "position": nullable(INTEGER), "estimated_wait_seconds": _WAIT},
             description="A request as its customer sees it.")
_CHAT = obj({"status": {"const": "waiting"}, "online": {"const": True},
             "request_id": nullable(STRING), "session_id": STRING,
             "participant_token": {"type": "string", "pattern": "^sbp_"}, "name": STRING,
             "join_url": STRING, "ws_url": STRING, "position": nullable(INTEGER),
             "estimated_wait_seconds": _WAIT})
_MESSAGE = obj({"status": {"const": "unanswered"}, "online": {"const": False},
                "request_id": STRING})
_REFUSED = {"anyOf": [error_object(_FIELD_REFUSED, field=STRING),
                      error_object(["bad_json", "bad_text"])]}

PATHS: Final[dict[str, dict[str, Schema]]] = {
    "/api/v1/intake-form": {
        "get": operation(
            "getIntakeForm", "The pre-chat form and the teams a customer can choose",
            tags=_TAGS, security=PUBLIC, method="get",
            responses={200: json_response(ref("IntakeForm"), "The form")}),
        "put": operation(
            "putIntakeForm", "Replace the pre-chat form (admins)", tags=_TAGS,
            security=TECHNICIAN_CHANGES, method="put", body=json_body(ref("IntakeForm")),
            responses={200: json_response(ref("IntakeForm"), "The form, as stored")},
            errors={400: ["invalid_form"]}),
    },
    "/api/v1/availability": {"get": operation(
        "getAvailability", "Whether anyone of the team is online, and the expected wait",
        tags=_TAGS, security=PUBLIC, method="get",
        parameters=[param("team", "query", STRING, "The team's id, name or slug")],
        responses={200: json_response(
            obj({"online": BOOLEAN, "estimated_wait_seconds": _WAIT}), "Cacheable",
            {"Cache-Control": {"schema": STRING, "required": True}})},
        errors={400: ["unknown_team"]})},
    "/api/v1/requests": {
        "post": operation(
            "submitRequest", "A customer's pre-chat form: a chat in the queue, or a message",
            tags=_TAGS, security=PUBLIC, method="post",
            body=json_body({"type": "object", "additionalProperties": STRING,
                            "description": "The form's answers, flat, all text; `website` "
                                           "is the honeypot"}),
            responses={
                201: json_response(_CHAT, "A chat: the customer waits in the team's queue"),
                202: json_response(_MESSAGE, "A message, left for the team"),
                400: json_response(_REFUSED, "A refused answer (`field` names it), or no "
                                             "JSON object")},
            errors={429: ["rate_limited", "queue_full"]}),
        "get": operation(
            "listRequests", "Requests of my teams (admins: all), newest first", tags=_TAGS,
            security=TECHNICIAN, method="get",
            parameters=[param("team", "query", ID, "Only this team's"),
                        param("kind", "query", values(RequestKind), "Only chats or messages")],
            responses={200: json_response(listing("requests", ref("Request")), "At most 200")},
            errors={400: ["invalid_input"], 404: ["not_found"]}),
        "options": operation(
            "requestsPreflight", "The CORS preflight of a site in `widget_origins` (web/portal.py)",
            tags=_TAGS, security=PUBLIC, method="options",
            parameters=[{**param("Origin", "header", STRING, "The site posting its own form"),
                         "example": "https://portal.example.com"}],
            responses={204: empty_response("That site may post", {
                "Access-Control-Allow-Origin": header("The site", required=True),
                "Access-Control-Allow-Methods": header("`POST`", required=True),
                "Access-Control-Allow-Headers": header("`Content-Type`", required=True),
                "Access-Control-Max-Age": header("Seconds", required=True)})},
            errors={403: ["origin_not_allowed"]}),
    },
    "/api/v1/requests/{request_id}": {"get": operation(
        "getRequest", "A request: to its customer where it stands, to technicians all",
        tags=_TAGS, security=(*TECHNICIAN, *PARTICIPANT), method="get",
        parameters=[_REQUEST_ID],
        responses={200: json_response({"anyOf": [ref("Request"), _PLACE]}, "The request")},
        errors={404: ["not_found"]})},
    "/api/v1/requests/{request_id}/session": {"post": operation(
        "answerRequest", "Answer a message: a session whose key is emailed to the customer",
        tags=_TAGS, security=TECHNICIAN_CHANGES, method="post", parameters=[_REQUEST_ID],
        body=json_body(obj({}, {"language": {"enum": ["en", "de"]}}), required=False),
        responses={201: json_response(obj({**SESSION_FIELDS, "join_url": STRING,
                                           "delivery": ref("Delivery")}), "The new session")},
        errors={400: ["invalid_language"], 404: ["not_found"],
                409: ["already_answered", "not_a_message", "email_not_configured"]})},
    SESSION + "/request": {"get": operation(
        "getSessionRequest", "The customer's request a session was made for", tags=_TAGS,
        security=TECHNICIAN, method="get", parameters=[SESSION_ID],
        responses={200: json_response(obj({"request": nullable(ref("Request"))}),
                                      "The request, or null")})},
    "/api/v1/teams/{team_id}/message-email": {"put": operation(
        "setMessageEmail", "Where the team's messages go while nobody is online (admins)",
        tags=_TAGS, security=TECHNICIAN_CHANGES, method="put",
        parameters=[path_param("team_id", "A team's id", ID)],
        body=json_body(obj({"email": nullable(STRING)})),
        responses={200: json_response(ref("Team"), "The team")},
        errors={400: ["invalid_input", "invalid_email"], 404: ["not_found"]})},
}
