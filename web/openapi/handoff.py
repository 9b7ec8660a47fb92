"""Technicians and teams, transfers and queues, collaborators, notes and seats
(web/handoff.py; docs/handoff.md)."""

from __future__ import annotations

from typing import Final

from .build import (
    BOOLEAN,
    ID,
    STRING,
    TECHNICIAN,
    TECHNICIAN_CHANGES,
    TIME,
    Schema,
    array,
    empty_response,
    json_body,
    json_response,
    listing,
    nullable,
    obj,
    operation,
    path_param,
    ref,
)
from .components import HANDOFF_FIELDS, PERSON, TEAM_FIELDS
from .sessions import SESSION, SESSION_ID

_TAGS = ["handoff"]
_TEAM_ID: Final = path_param("team_id", "A team's id", ID)
_HANDOFF_ID: Final = path_param("handoff_id", "A transfer's id")
_ADMIN = "Admins only."
_TECHNICIAN_ID_BODY = json_body(obj({"technician_id": ID}))
# A queue's waiting transfers, with when they are due and the customer's request if any.
_QUEUE = obj({**TEAM_FIELDS, "waiting": array(obj({
    **HANDOFF_FIELDS, "due_at": TIME, "request": nullable(ref("Request"))}))})
_LOGIN = obj({"login_id": STRING, "technician": PERSON, "created_at": TIME,
              "last_seen_at": TIME})


def _read(operation_id: str, summary: str, answer: Schema, description: str,
          *params: Schema, admin: bool = False) -> Schema:
    return operation(operation_id, summary, tags=_TAGS, security=TECHNICIAN, method="get",
                     parameters=list(params), description=_ADMIN if admin else "",
                     responses={200: json_response(answer, description)})


def _answer(operation_id: str, summary: str, body: Schema | None = None) -> Schema:
    """Declining or taking back a transfer."""
    return operation(operation_id, summary, tags=_TAGS, security=TECHNICIAN_CHANGES,
                     method="post", parameters=[_HANDOFF_ID], body=body,
                     responses={200: json_response(ref("Handoff"), "The transfer")},
                     errors={**({400: ["invalid_input"]} if body else {}),
                             404: ["not_found"], 409: ["handoff_taken"]})


PATHS: Final[dict[str, dict[str, Schema]]] = {
    "/api/v1/teams": {
        "get": _read("listTeams", "Every team", listing("teams", ref("Team")), "The teams"),
        "post": operation(
            "createTeam", "Create a team", tags=_TAGS, security=TECHNICIAN_CHANGES,
            method="post", description=_ADMIN,
            body=json_body(obj({"name": {"type": "string", "minLength": 1,
                                         "maxLength": 100}})),
            responses={201: json_response(ref("Team"), "The new team")},
            errors={400: ["invalid_input"], 409: ["team_exists"]}),
    },
    "/api/v1/teams/{team_id}/members": {"post": operation(
        "addTeamMember", "Add a technician to a team", tags=_TAGS,
        security=TECHNICIAN_CHANGES, method="post", description=_ADMIN,
        parameters=[_TEAM_ID], body=_TECHNICIAN_ID_BODY,
        responses={200: json_response(ref("Team"), "The team")},
        errors={400: ["invalid_input"], 404: ["not_found"]})},
    "/api/v1/teams/{team_id}/members/{technician_id}": {"delete": operation(
        "removeTeamMember", "Take a technician out of a team", tags=_TAGS,
        security=TECHNICIAN_CHANGES, method="delete", description=_ADMIN,
        parameters=[_TEAM_ID, path_param("technician_id", "A technician's id", ID)],
        responses={200: json_response(ref("Team"), "The team")},
        errors={400: ["invalid_input"], 404: ["not_found"]})},
    SESSION + "/transfer": {"post": operation(
        "transferSession", "Hand the session to a technician or a team's queue", tags=_TAGS,
        security=TECHNICIAN_CHANGES, method="post", parameters=[SESSION_ID],
        body=json_body(obj({"note": {"type": "string", "maxLength": 2000}},
                           {"to_technician_id": ID, "to_team_id": ID,
                            "keep_sender": BOOLEAN})),
        responses={201: json_response(ref("Handoff"), "The transfer, `pending`")},
        errors={400: ["invalid_input", "note_required", "invalid_target"],
                409: ["handoff_pending", "session_ended"]})},
    SESSION + "/handoffs": {"get": _read(
        "listSessionHandoffs", "The session's transfer history",
        listing("handoffs", ref("Handoff")), "Every transfer of the session", SESSION_ID)},
    "/api/v1/handoffs": {"get": _read(
        "listMyHandoffs", "Transfers offered to me and to my teams' queues",
        listing("handoffs", ref("Handoff")), "The pending transfers")},
    "/api/v1/handoffs/{handoff_id}/accept": {"post": operation(
        "acceptHandoff", "Take the session", tags=_TAGS, security=TECHNICIAN_CHANGES,
        method="post", parameters=[_HANDOFF_ID],
        responses={200: json_response(ref("Session"), "The session, now the caller's")},
        errors={404: ["not_found"], 409: ["handoff_taken", "session_full"]})},
    "/api/v1/handoffs/{handoff_id}/decline": {"post": _answer(
        "declineHandoff", "Say no to a transfer offered to me",
        body=json_body(obj({}, {"reason": STRING}), required=False))},
    "/api/v1/handoffs/{handoff_id}/cancel": {"post": _answer(
        "cancelHandoff", "Take a transfer back (the session's owner)")},
    "/api/v1/queues": {"get": _read(
        "listQueues", "My teams' queues (admins: all), longest waiting first",
        listing("queues", _QUEUE), "The queues")},
    SESSION + "/notes": {
        "get": _read("getNotes", "The session's notes", obj({"notes": STRING}), "The notes",
                     SESSION_ID),
        "put": operation(
            "putNotes", "Replace the session's notes", tags=_TAGS,
            security=TECHNICIAN_CHANGES, method="put", parameters=[SESSION_ID],
            body=json_body(obj({"notes": {"type": "string", "maxLength": 20000}})),
            responses={200: json_response(obj({"notes": STRING}), "As stored")},
            errors={400: ["invalid_input"], 409: ["session_ended"]}),
    },
    SESSION + "/collaborators": {"post": operation(
        "inviteTechnician", "Invite a technician into the session", tags=_TAGS,
        security=TECHNICIAN_CHANGES, method="post", parameters=[SESSION_ID],
        body=_TECHNICIAN_ID_BODY,
        responses={200: json_response(ref("Session"), "The session")},
        errors={400: ["invalid_input"],
                409: ["session_full", "already_present", "session_ended"]})},
    SESSION + "/collaborators/me": {"delete": operation(
        "leaveSession", "Leave a session I collaborate in", tags=_TAGS,
        security=TECHNICIAN_CHANGES, method="delete", parameters=[SESSION_ID],
        responses={204: empty_response("Left")}, errors={409: ["not_present"]})},
    "/api/v1/logins": {"get": _read(
        "listLogins", "Who holds a seat now", obj({
            "seats": {"type": "integer", "minimum": 0, "description": "0: unlimited"},
            "logins": array(_LOGIN)}), "The live logins", admin=True)},
    "/api/v1/logins/{login_id}/end": {"post": operation(
        "endLogin", "Log a technician's browser out", tags=_TAGS,
        security=TECHNICIAN_CHANGES, method="post", description=_ADMIN,
        parameters=[path_param("login_id", "A login's id")],
        responses={204: empty_response("Ended: its cookie no longer works")},
        errors={404: ["not_found"]})},
}
