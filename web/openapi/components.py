"""The shared parts of the description: the objects the API answers with (read from the
code's own declarations where it has them: event kinds, states, preferences), the error
object, the security schemes and the common answers."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Final

from broker.delivery.model import DeliveryStatus
from broker.handoff.model import HandoffState
from broker.preferences import MAX_POPUP_SECONDS, Preferences
from broker.protocol.events import SPECS, Time
from broker.sessions.model import Role, SessionState
from broker.transfer.model import UploadState

from .build import (
    BOOLEAN,
    INTEGER,
    STRING,
    TIME,
    TIME_OR_NULL,
    Schema,
    array,
    error_object,
    json_response,
    nullable,
    obj,
    values,
)

PERSON: Final = obj({"id": INTEGER, "name": STRING})
# A session's owner, or a transfer's sender: nobody yet for a customer's request in a queue.
OWNER: Final = obj({"id": nullable(INTEGER), "name": nullable(STRING)})

_ERROR = obj({"error": {"type": "string", "description": "A stable machine code"},
              "message": {"type": "string", "description": "A text for people"}},
             description="Every error under /api/ (docs/api.md, Errors).")

SESSION_FIELDS: Final[dict[str, Schema]] = {
    "session_id": {"type": "string", "description": "22 random base64url characters"},
    "state": values(SessionState),
    "technician": OWNER,
    "end_user_name": nullable(STRING),
    "created_at": TIME, "started_at": TIME_OR_NULL, "ended_at": TIME_OR_NULL,
    "end_reason": nullable(STRING),
    "key_expires_at": TIME_OR_NULL,
    "reconnect_deadline": TIME_OR_NULL,
    "collaborator_ids": array(INTEGER),
}
_SESSION = obj(SESSION_FIELDS, description="A support session (docs/api.md, The session "
                                           "object).")

_STARTED = obj({
    **SESSION_FIELDS,
    "key": {"type": "string", "pattern": "^[0-9]{3} [0-9]{3} [0-9]{3}$",
            "description": "The support key, shown only here"},
    "join_url": {"type": "string", "description": "`<public_url>/j/<token>`, shown only here"},
    "expires_at": TIME})

_JOINED = obj({"session_id": STRING,
               "participant_token": {"type": "string", "pattern": "^sbp_"},
               "technician_name": STRING, "name": STRING, "ws_url": STRING})

_AUTHOR = nullable(obj({"role": values(Role), "name": STRING, "sender": STRING}))


def _json_type(hint: Any) -> Schema:
    """A field of an event kind (broker/protocol/events.py) as JSON Schema."""
    if isinstance(hint, types.UnionType):
        kinds = [kind for kind in typing.get_args(hint) if kind is not type(None)]
        (single,) = kinds
        return nullable(_json_type(single))
    if hint is Time:
        return TIME
    return {str: STRING, int: INTEGER, float: {"type": "number"}, bool: BOOLEAN}[hint]


def _event(type_name: str) -> Schema:
    spec = SPECS[type_name]
    own = {name: _json_type(hint) for name, (hint, _) in spec.fields.items()}
    required = [name for name, (_, needed) in spec.fields.items() if needed]
    return {"type": "object", "title": type_name, "additionalProperties": False,
            "required": ["seq", "type", "at", "author", *required],
            "properties": {**_EVENT_FIELDS, "type": {"const": type_name}, **own}}


_EVENT_FIELDS: Final[dict[str, Schema]] = {
    "seq": INTEGER, "type": STRING, "at": TIME, "author": _AUTHOR,
    "client_id": {"type": "string", "description": "When the author sent one"}}
_EVENT = {
    "description": "A session event: `seq`, `type`, `at`, `author` and the fields of its "
                   "type (broker/protocol/events.py; docs/protocol.md, Events).",
    "oneOf": [_event(name) for name in sorted(SPECS)],
}

_DELIVERY = obj({
    "delivery_id": STRING, "session_id": STRING,
    "channel": {"type": "string", "enum": ["sms", "email"]},
    "to": STRING, "language": STRING, "status": values(DeliveryStatus),
    "final": BOOLEAN, "summary": STRING, "error": nullable(STRING),
    "attempts": INTEGER, "next_attempt_at": TIME_OR_NULL,
    "created_at": TIME, "updated_at": TIME,
    "history": array(obj({"at": TIME, "outcome": STRING, "detail": nullable(STRING)})),
}, description="A key sent by SMS or email (docs/delivery.md).")

HANDOFF_FIELDS: Final[dict[str, Schema]] = {
    "handoff_id": STRING, "session_id": STRING, "state": values(HandoffState),
    "from": OWNER, "to_technician": nullable(PERSON), "to_team": nullable(PERSON),
    "note": STRING, "keep_sender": BOOLEAN, "end_user_name": nullable(STRING),
    "session_state": values(SessionState), "created_at": TIME,
    "waiting_seconds": nullable(INTEGER), "deadline": TIME_OR_NULL,
    "decided_at": TIME_OR_NULL,
    "decided_by": nullable(obj({"id": INTEGER, "name": nullable(STRING)})),
    "reason": nullable(STRING)}
_HANDOFF = obj(HANDOFF_FIELDS, description="A transfer of a session (docs/handoff.md).")

TEAM_FIELDS: Final[dict[str, Schema]] = {
    "team_id": INTEGER, "name": STRING, "member_ids": array(INTEGER), "lead_ids": array(INTEGER),
    "message_email": nullable(STRING)}

_CANNED = obj({
    "id": INTEGER, "scope": {"type": "string", "enum": ["company", "team", "personal"]},
    "team_id": nullable(INTEGER), "team_name": nullable(STRING), "title": STRING,
    "text": STRING, "shortcut": nullable(STRING), "editable": BOOLEAN,
    "created_at": TIME, "updated_at": TIME,
}, description="A canned response (docs/api.md, Canned responses).")


def _preferences(*, every: bool) -> Schema:
    """The preferences as answered (`every` field) or as sent (any of them)."""
    fields: dict[str, Schema] = {}
    for field in dataclasses.fields(Preferences):
        fields[field.name] = BOOLEAN if field.type == "bool" else {
            "enum": ["en", "de"]} if field.type == "str" else {
            "type": "integer", "minimum": 0, "maximum": MAX_POPUP_SECONDS}
    if every:
        return obj(fields)
    return obj({}, fields)


_FILE = obj({
    "upload_id": STRING, "name": STRING, "size": INTEGER, "received": INTEGER,
    "state": values(UploadState), "type": STRING, "sha256": nullable(STRING),
    "url": STRING, "sender": _AUTHOR, "created_at": TIME, "completed_at": TIME_OR_NULL,
    "reason": nullable(STRING),
}, description="A file sent in a session (docs/transfer.md).")

SCHEMAS: Final[dict[str, Schema]] = {
    "Error": _ERROR,
    "Session": _SESSION,
    "StartedSession": _STARTED,
    "Joined": _JOINED,
    "Event": _EVENT,
    "Delivery": _DELIVERY,
    "Handoff": _HANDOFF,
    "Team": obj(TEAM_FIELDS),
    "CannedResponse": _CANNED,
    "Preferences": _preferences(every=True),
    "PreferenceChanges": _preferences(every=False),
    "File": _FILE,
}

SECURITY_SCHEMES: Final[dict[str, Schema]] = {
    "apiToken": {"type": "http", "scheme": "bearer", "bearerFormat": "sbt_…",
                 "description": "A technician's API token (`supportbroker token create`)."},
    "participantToken": {"type": "http", "scheme": "bearer", "bearerFormat": "sbp_…",
                         "description": "An end user's token for one session, from "
                                        "`POST /api/v1/join`."},
    "loginCookie": {"type": "apiKey", "in": "cookie", "name": "sb_session",
                    "description": "A technician's browser login (`POST /login`)."},
    "csrfHeader": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                   "description": "With the login cookie, on every request that is not "
                                  "GET, HEAD or OPTIONS: the login's CSRF token."},
}

RESPONSES: Final[dict[str, Schema]] = {
    "Internal": json_response(
        error_object(["internal"], reference={"type": "string", "pattern": "^[0-9a-f]{12}$"}),
        "A fault of the broker; `reference` names its log line"),
}
