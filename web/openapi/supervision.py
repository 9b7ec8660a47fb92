"""The supervisor board (web/supervision.py; docs/supervision.md) and team leads."""

from __future__ import annotations

from typing import Final

from .build import (
    BOOLEAN,
    ID,
    INTEGER,
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
    path_param,
    ref,
)
from .components import SESSION_FIELDS
from .sessions import SESSION, SESSION_ID, socket

_TAGS = ["supervision"]

SCHEMAS: Final[dict[str, Schema]] = {
    "BoardEntry": obj({
        **SESSION_FIELDS, "live": BOOLEAN,
        "sharing": {**BOOLEAN, "description": "A screen is being shared in it now"},
        "wait_seconds": {**INTEGER, "description": "From the key to the end user joining "
                                                   "(still counting while nobody joined)"},
        "duration_seconds": nullable(INTEGER), "at": TIME},
        description="A live session on the supervisor board"),
}

PATHS: Final[dict[str, dict[str, Schema]]] = {
    "/api/v1/supervision": {"get": operation(
        "supervisionBoard", "The live sessions I supervise", tags=_TAGS, security=TECHNICIAN,
        method="get",
        description="Admins: every live session; team leads: those owned by the members of "
                    "the teams they lead; everybody else 403.",
        responses={200: json_response(obj({
            "everyone": BOOLEAN, "team_ids": array(INTEGER),
            "sessions": array(ref("BoardEntry"))}), "The board, oldest first")},
        errors={403: ["forbidden"]})},
    "/api/v1/supervision/ws": {"get": socket(
        "supervisionSocket", "The supervisor board's socket",
        "With the supervisor's login cookie, from the broker's own pages: the whole board, "
        "then every change (`supervision.update`, docs/protocol.md).")},
    SESSION + "/supervision/join": {"post": operation(
        "supervisionJoin", "Join a session I supervise as a collaborator", tags=_TAGS,
        security=TECHNICIAN_CHANGES, method="post",
        description="Admins any live session, team leads their teams' (docs/supervision.md). "
                    "The session's technicians see the collaborator arrive; audited as "
                    "`supervisor.joined`.",
        parameters=[SESSION_ID],
        responses={200: json_response(ref("Session"), "The session, with me among its "
                                                       "collaborators")},
        errors={403: ["forbidden"], 404: ["not_found"],
                409: ["already_present", "session_ended", "session_full", "in_queue"]})},
    SESSION + "/supervision/take-over": {"post": operation(
        "supervisionTakeOver", "Take over a session I supervise", tags=_TAGS,
        security=TECHNICIAN_CHANGES, method="post",
        description="Ownership moves to me as after an accepted handoff (its `reason` "
                    "`taken_over`); the old owner gets the note and stays as a collaborator "
                    "unless `keep_owner` is false; transfers still waiting are cancelled. "
                    "Audited as `supervisor.took_over` with the note.",
        parameters=[SESSION_ID],
        body=json_body(obj({
            "note": {"type": "string", "minLength": 1, "maxLength": 2000,
                     "description": "For the session's technician (never the end user)"}},
            {"keep_owner": {**BOOLEAN, "default": True}})),
        responses={200: json_response(ref("Session"), "The session, now mine")},
        errors={400: ["note_required", "note_too_long", "invalid_input"],
                403: ["forbidden"], 404: ["not_found"],
                409: ["own_session", "session_ended", "in_queue", "session_changed"]})},
    SESSION + "/watch": {"get": socket(
        "watchSocket", "Watch a session read-only",
        "With the supervisor's login cookie, from the broker's own pages: the session's "
        "events replayed, `synced`, then each new one; takes only the shared screen's "
        "signaling (`watch.*`, docs/protocol.md), anything else is refused with `read_only`. "
        "The session's technicians get `supervisor.watching` while it is open "
        "(docs/supervision.md).",
        SESSION_ID)},
    "/api/v1/teams/{team_id}/members/{technician_id}": {"patch": operation(
        "changeTeamMember", "Make a member the team's lead, or no longer", tags=["handoff"],
        security=TECHNICIAN_CHANGES, method="patch", description="Admins only.",
        parameters=[path_param("team_id", "A team's id", ID),
                    path_param("technician_id", "A technician's id", ID)],
        body=json_body(obj({"lead": BOOLEAN})),
        responses={200: json_response(ref("Team"), "The team")},
        errors={400: ["invalid_input"], 404: ["not_found"], 409: ["not_a_member"]})},
}
