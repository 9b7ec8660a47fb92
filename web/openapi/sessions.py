"""Sessions, keys, messages, events and transcripts (web/api.py), the native agent's routes
(web/agent.py) and the two WebSockets (web/ws.py, web/dashboard.py)."""

from __future__ import annotations

from typing import Final

from .build import (
    ID,
    INTEGER,
    PARTICIPANT,
    PUBLIC,
    STRING,
    TECHNICIAN,
    TECHNICIAN_CHANGES,
    TIME,
    Schema,
    array,
    json_body,
    json_response,
    listing,
    nullable,
    obj,
    operation,
    param,
    path_param,
    ref,
)
from .components import SESSION_FIELDS

SESSION_ID: Final = path_param("session_id", "The session's id (22 base64url characters)")
SESSION: Final = "/api/v1/sessions/{session_id}"
_SESSIONS = ["sessions"]
_ANYONE_IN = (*TECHNICIAN, *PARTICIPANT)
_KEY_ERRORS: Final = {400: ["key_malformed", "invalid_input"], 404: ["key_unknown"],
                      409: ["key_used", "session_ended"], 410: ["key_expired", "key_revoked"],
                      429: ["rate_limited"]}


def _session_answer(description: str) -> dict[int, Schema]:
    return {200: json_response(ref("Session"), description)}


def socket(operation_id: str, summary: str, description: str, *params: Schema) -> Schema:
    """A WebSocket: who may use it is settled after the handshake, in its frames."""
    built = operation(
        operation_id, summary, tags=["sockets"], security=PUBLIC, method="get",
        parameters=list(params),
        responses={101: {"description": "The WebSocket (RFC 6455); its frames, errors and "
                                        "close codes are in docs/protocol.md"}},
        errors={400: ["bad_request"]}, description=description)
    built["responses"].pop("404", None)  # an unknown session is an error frame
    built["responses"]["400"]["description"] = "Not a WebSocket handshake: `bad_request`"
    return built


PATHS: Final[dict[str, dict[str, Schema]]] = {
    "/api/v1/sessions": {
        "post": operation(
            "startSession", "Start a session: a support key and a join link", tags=_SESSIONS,
            security=TECHNICIAN_CHANGES, method="post",
            body=json_body(obj({}, {"key_lifetime_seconds": {
                "type": "integer", "minimum": 1,
                "description": "At most `key_lifetime_max_seconds`; default "
                               "`key_lifetime_seconds`"}}), required=False),
            responses={201: json_response(ref("StartedSession"),
                                          "The session, with its key and link (shown once)")},
            errors={400: ["invalid_input"]}),
        "get": operation(
            "listSessions", "History: the sessions the caller took part in (admins: all), "
            "searched and filtered, newest first, a page at a time", tags=_SESSIONS,
            security=TECHNICIAN, method="get",
            parameters=[
                param("q", "query", STRING, "Words, every one found in the session"),
                param("state", "query", STRING, "States, comma-separated"),
                param("technician_id", "query", ID, "Only this technician's history"),
                param("from", "query", STRING, "ISO 8601: created at or after"),
                param("to", "query", STRING, "ISO 8601: created before (a date: that day "
                                             "included)"),
                param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200,
                                         "default": 50}, "At most this many"),
                param("cursor", "query", STRING, "The `next_cursor` of the page before")],
            responses={200: json_response(obj({
                "sessions": array(ref("Session")), "next_cursor": nullable(STRING)}),
                "A page; `next_cursor` is null on the last")},
            errors={400: ["invalid_query", "invalid_time", "bad_cursor", "invalid_input"]}),
    },
    SESSION: {"get": operation(
        "getSession", "One session", tags=_SESSIONS, security=_ANYONE_IN, method="get",
        parameters=[SESSION_ID], responses={200: json_response(
            obj(SESSION_FIELDS, {"key": STRING, "join_url": STRING}),
            "The session; to its owner and admins also the live key and join link")})},
    SESSION + "/events": {"get": operation(
        "listEvents", "The session's events after a sequence number", tags=_SESSIONS,
        security=_ANYONE_IN, method="get",
        parameters=[SESSION_ID,
                    param("after", "query", {"type": "integer", "minimum": 0, "default": 0},
                          "Only events with a larger `seq`"),
                    param("limit", "query", {"type": "integer", "minimum": 1,
                                             "maximum": 10000, "default": 1000},
                          "At most this many events")],
        responses={200: json_response(listing("events", ref("Event")), "In `seq` order")},
        errors={400: ["invalid_input"]})},
    SESSION + "/messages": {"post": operation(
        "postMessage", "Write a chat message", tags=_SESSIONS,
        security=(*TECHNICIAN_CHANGES, *PARTICIPANT), method="post", parameters=[SESSION_ID],
        body=json_body(obj({"text": {"type": "string", "description":
                                     "1 to `chat_max_bytes` bytes of UTF-8, trimmed"}},
                           {"client_id": {"type": "string", "minLength": 1, "maxLength": 64,
                                          "description": "A resend with the same id is "
                                                         "stored once"}})),
        responses={201: json_response(obj({"seq": INTEGER}), "Stored"),
                   200: json_response(obj({"seq": INTEGER}),
                                      "A resend: the first copy's sequence number")},
        errors={400: ["invalid_input", "message_empty", "message_too_long"],
                409: ["session_ended", "session_waiting", "conflict"],
                429: ["rate_limited"]})},
    SESSION + "/end": {"post": operation(
        "endSession", "End the session (its owner or an admin)", tags=_SESSIONS,
        security=TECHNICIAN_CHANGES, method="post", parameters=[SESSION_ID],
        responses=_session_answer("The ended session (unchanged if it had ended)"))},
    SESSION + "/revoke": {"post": operation(
        "revokeKey", "Withdraw the key of a waiting session", tags=_SESSIONS,
        security=TECHNICIAN_CHANGES, method="post", parameters=[SESSION_ID],
        responses=_session_answer("The session, ended with `key_revoked`"),
        errors={409: ["not_waiting"]})},
    SESSION + "/transcript": {"get": operation(
        "exportTranscript", "The readable transcript as a file", tags=_SESSIONS,
        security=TECHNICIAN, method="get",
        description="For the technicians who may read the session, and for every technician "
                    "who took part in it: also after handing it over or leaving it.",
        parameters=[SESSION_ID,
                    param("format", "query", {"enum": ["text", "html"], "default": "text"},
                          "Plain text or a self-contained HTML page"),
                    param("lang", "query", STRING, "`en` or `de` (else the reader's)"),
                    param("tz", "query", STRING, "An IANA time zone (else the reader's)")],
        responses={200: {
            "description": "An attachment, `transcript-<id>.txt` or `.html`",
            "headers": {"Content-Disposition": {"schema": STRING, "required": True}},
            "content": {"text/plain": {"schema": STRING}, "text/html": {"schema": STRING}}}},
        errors={400: ["invalid_input"]})},
    "/api/v1/join": {"post": operation(
        "join", "Redeem a support key (typed, or the join link's token)", tags=_SESSIONS,
        security=PUBLIC, method="post",
        body=json_body(obj({}, {"key": {"type": "string", "description": "Nine digits"},
                                "token": {"type": "string",
                                          "description": "The 32 characters after /j/"},
                                "name": {"type": "string", "maxLength": 80}})),
        responses={200: json_response(ref("Joined"), "The participant token for this "
                                                     "session")},
        errors=_KEY_ERRORS,
        description="Failed redemptions count against the guessing limits "
                    "(docs/security.md).")},
    SESSION + "/deliveries": {
        "post": operation(
            "sendKey", "Send the key by SMS or email", tags=_SESSIONS,
            security=TECHNICIAN_CHANGES, method="post", parameters=[SESSION_ID],
            body=json_body(obj({"channel": {"enum": ["sms", "email"]}, "to": STRING},
                               {"language": {"enum": ["en", "de"]}})),
            responses={202: json_response(ref("Delivery"), "Queued for the worker")},
            errors={400: ["invalid_input", "invalid_channel", "invalid_language",
                          "invalid_phone", "invalid_email"],
                    409: ["sms_not_configured", "email_not_configured", "not_waiting"],
                    410: ["key_expired", "key_revoked"], 429: ["rate_limited"]}),
        "get": operation(
            "listDeliveries", "The session's key deliveries, oldest first", tags=_SESSIONS,
            security=TECHNICIAN, method="get", parameters=[SESSION_ID],
            responses={200: json_response(listing("deliveries", ref("Delivery")),
                                          "Every delivery")}),
    },
    "/api/v1/webhooks/twilio/status": {"post": operation(
        "twilioStatus", "Twilio's status callback for an SMS", tags=["deliveries"],
        security=PUBLIC, method="post",
        parameters=[param("X-Twilio-Signature", "header", STRING,
                          "Twilio's signature of the URL and the form")],
        body={"required": True, "content": {"application/x-www-form-urlencoded": {
            "schema": obj({}, {"MessageSid": STRING, "MessageStatus": STRING,
                               "ErrorCode": STRING})}}},
        responses={204: {"description": "Recorded"}},
        errors={400: ["invalid_input"], 403: ["bad_signature"], 404: ["not_found"]},
        description="Answers 404 while `twilio_auth_token` is not set.")},
    SESSION + "/agent-link": {"post": operation(
        "createAgentLink", "A link for the end user's native agent", tags=["agent"],
        security=PARTICIPANT, method="post", parameters=[SESSION_ID],
        responses={201: json_response(obj({"link": STRING, "command": STRING,
                                           "expires_at": TIME}),
                                      "Redeemable for `agent_link_seconds`")},
        errors={403: ["end_user_only"], 409: ["session_waiting", "session_ended"]})},
    "/api/v1/agent/join": {"post": operation(
        "agentJoin", "The agent redeems an agent link, or the key or join link",
        tags=["agent"], security=PUBLIC, method="post",
        body=json_body(obj({}, {"link": STRING, "key": STRING, "token": STRING,
                                "name": {"type": "string", "maxLength": 80}})),
        responses={200: json_response(ref("Joined"), "The agent's participant token")},
        errors=_KEY_ERRORS)},
    SESSION + "/ws": {"get": socket(
        "sessionSocket", "The session's socket",
        "The first frame, `hello`, carries a participant or API token (or `null`: a "
        "technician's same-origin browser login). Events live, with resume; chat; screen "
        "sharing (docs/protocol.md).", SESSION_ID)},
    "/api/v1/technician/ws": {"get": socket(
        "technicianSocket", "The dashboard's socket",
        "With the technician's login cookie, from the broker's own pages: live changes to "
        "the technician's sessions, key deliveries and handoffs (docs/protocol.md).")},
}
