"""What a webhook says: the journal's events, failed key deliveries and the technicians'
closing forms as webhook events.

Every body is ``{"id", "type", "timestamp", "data"}`` (docs/webhooks.md shows each type).
The id is stable: made from where the event is stored (the session and its sequence
number, the delivery attempt, or the closing form's save), so the same event always has
the same id, on every retry, after a restart and from every node; receivers de-duplicate
by it.
"""

from __future__ import annotations

import json
from typing import Any

from ..clock import isoformat
from .model import EventType

# The journal's event kinds (broker/protocol/events.py) that are webhook events.
FROM_JOURNAL: dict[str, EventType] = {
    "created": EventType.SESSION_CREATED,
    "joined": EventType.SESSION_JOINED,
    "handed_over": EventType.SESSION_HANDED_OVER,
    "ended": EventType.SESSION_ENDED,
    "file.offered": EventType.FILE_UPLOADED,
    "share.started": EventType.SHARE_STARTED,
    "share.stopped": EventType.SHARE_ENDED,
    "request.opened": EventType.REQUEST_CREATED,
    "request.breached": EventType.REQUEST_TARGET_BREACHED,
    "survey.completed": EventType.SURVEY_COMPLETED,
}
_SHARE_FIELDS = ("share_id", "direction", "source", "sharer_name", "viewer_name", "control")
_FILE_FIELDS = ("upload_id", "name", "size", "content_type", "sha256")


def body(event_id: str, event_type: str, at: float, data: dict[str, Any]) -> str:
    return json.dumps({"id": event_id, "type": event_type, "timestamp": isoformat(at),
                       "data": data}, separators=(",", ":"), ensure_ascii=False)


def journal_event_id(session_id: str, seq: int) -> str:
    return f"evt_{session_id}.{seq}"


def session_facts(row: Any) -> dict[str, Any]:
    """The session as the webhook tells it (from a sessions row joined with its owner)."""
    def when(value: float | None) -> str | None:
        return isoformat(value) if value is not None else None

    technician = None if row.technician_id is None else {
        "id": row.technician_id, "name": row.display_name, "email": row.email}
    return {"id": row.id, "technician": technician,
            "end_user_name": row.end_user_name, "created_at": when(row.created_at),
            "started_at": when(row.started_at), "ended_at": when(row.ended_at),
            "end_reason": row.end_reason}


def journal_data(kind: str, session: dict[str, Any], author: dict[str, Any] | None,
                 fields: dict[str, Any]) -> dict[str, Any]:
    """The `data` of a webhook made from a journal event of `kind`."""
    actor = {"role": author["role"], "name": author["name"]} if author else None
    data: dict[str, Any] = {"session_id": session["id"], "session": session, "actor": actor}
    if kind == "created":
        data["key_expires_at"] = isoformat(fields["expires_at"])
    elif kind == "joined":
        data["end_user_name"] = actor["name"] if actor else session["end_user_name"]
    elif kind == "handed_over":
        data.update({"from": {"id": fields["from_id"], "name": fields["from"]},
                     "to": {"id": fields["to_id"], "name": fields["to"]},
                     "sender_stays": fields["stays"], "reason": fields.get("reason")})
    elif kind == "ended":
        data["reason"] = fields["reason"]
    elif kind == "file.offered":
        data["file"] = {name: fields[name] for name in _FILE_FIELDS}
    elif kind == "request.opened":
        data["request"] = {"team": fields["team"], "severity": fields["severity"],
                           "due_at": isoformat(fields["due_at"])}
    elif kind == "request.breached":
        data["request"] = {"severity": fields["severity"], "due_at": isoformat(fields["due_at"]),
                           "target_seconds": fields["target_seconds"],
                           "business_hours": fields["business_hours"]}
    elif kind == "survey.completed":
        data["survey"] = {name: fields.get(name) for name in ("rating", "solved", "comment")}
    elif kind in ("share.started", "share.stopped"):
        data["share"] = {name: fields[name] for name in _SHARE_FIELDS}
        if kind == "share.stopped":
            data["reason"] = fields["reason"]
    return data


def closing_data(row: Any, session: dict[str, Any]) -> dict[str, Any]:
    """The `data` of a closing.recorded webhook (a session_closings row)."""
    category = None if row.category is None else {
        "id": row.category, "label": json.loads(row.category_label)}
    return {"session_id": row.session_id, "session": session,
            "actor": {"role": "technician", "name": row.technician_name},
            "closing": {"category": category, "resolved": row.resolved, "ticket": row.ticket,
                        "recorded_at": isoformat(row.recorded_at)}}


def delivery_failed_data(row: Any, session: dict[str, Any] | None) -> dict[str, Any]:
    """The `data` of a delivery.failed webhook (a delivery_attempts row joined with its
    delivery)."""
    return {"session_id": row.session_id, "session": session,
            "delivery": {"id": row.delivery_id, "channel": row.channel,
                         "recipient": row.recipient, "language": row.language,
                         "attempts": row.attempts, "error": row.detail,
                         "failed_at": isoformat(row.at)}}


def test_data(endpoint_id: str) -> dict[str, Any]:
    return {"webhook_id": endpoint_id, "session_id": None,
            "message": "A test event, sent because an admin asked for one."}

