"""How domain objects look on the wire (JSON API and sockets alike)."""

from __future__ import annotations

from typing import Any

from broker.clock import isoformat
from broker.delivery import Delivery
from broker.handoff import HandoffNotice, Team
from broker.sessions import Event, Session


def _time(value: float | None) -> str | None:
    return None if value is None else isoformat(value)


def session_json(session: Session) -> dict[str, Any]:
    return {
        "session_id": session.id,
        "state": session.state.value,
        "technician": {"id": session.technician_id, "name": session.technician_name},
        "end_user_name": session.end_user_name,
        "created_at": _time(session.created_at),
        "started_at": _time(session.started_at),
        "ended_at": _time(session.ended_at),
        "end_reason": session.end_reason,
        "key_expires_at": _time(session.key_expires_at),
        "reconnect_deadline": _time(session.reconnect_deadline),
        "collaborator_ids": list(session.collaborator_ids),
    }


_EVENT_TIMES = frozenset({"expires_at", "deadline"})  # event fields that are epoch seconds


def event_json(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = {"seq": event.seq, "type": event.type, "at": isoformat(event.at),
                            "author": event.author, **event.data}
    for name in _EVENT_TIMES & event.data.keys():
        data[name] = isoformat(event.data[name])
    if event.client_id is not None:
        data["client_id"] = event.client_id
    return data


_STATUS_WORDS = {
    "pending": "Waiting to be sent",
    "sending": "Sending…",
    "retrying": "Could not send yet; trying again",
    "queued": "Accepted by Twilio, waiting to go out",
    "sent": "Sent",
    "delivered": "Delivered to the phone",
    "undelivered": "Not delivered",
    "failed": "Failed",
    "interrupted": "Interrupted; may not have been sent",
    "cancelled": "Not sent",
}


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    status = delivery.status.value
    summary = _STATUS_WORDS[status]
    if delivery.error:
        summary += f": {delivery.error}"
    return {
        "delivery_id": delivery.id,
        "session_id": delivery.session_id,
        "channel": delivery.channel.value,
        "to": delivery.recipient,
        "language": delivery.language,
        "status": status,
        "final": delivery.final,
        "summary": summary,
        "error": delivery.error,
        "attempts": delivery.attempts,
        "next_attempt_at": _time(delivery.next_attempt_at)
        if status == "retrying" else None,
        "created_at": _time(delivery.created_at),
        "updated_at": _time(delivery.updated_at),
        "history": [{"at": isoformat(a.at), "outcome": a.outcome, "detail": a.detail}
                    for a in delivery.history],
    }


def handoff_json(notice: HandoffNotice, now: float) -> dict[str, Any]:
    handoff = notice.handoff
    return {
        "handoff_id": handoff.id,
        "session_id": handoff.session_id,
        "state": handoff.state.value,
        "from": {"id": handoff.from_technician_id, "name": notice.from_name},
        "to_technician": None if handoff.to_technician_id is None else
        {"id": handoff.to_technician_id, "name": notice.to_name},
        "to_team": None if handoff.to_team_id is None else
        {"id": handoff.to_team_id, "name": notice.team_name},
        "note": handoff.note,
        "keep_sender": handoff.keep_sender,
        "end_user_name": notice.end_user_name,
        "session_state": notice.session_state,
        "created_at": isoformat(handoff.created_at),
        "waiting_seconds": max(0, round(now - handoff.created_at))
        if handoff.state.value == "pending" else None,
        "deadline": _time(handoff.deadline),
        "decided_at": _time(handoff.decided_at),
        "reason": handoff.reason,
    }


def team_json(team: Team) -> dict[str, Any]:
    return {"team_id": team.id, "name": team.name, "member_ids": list(team.member_ids)}
