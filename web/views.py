"""How domain objects look on the wire (JSON API and sockets alike)."""

from __future__ import annotations

from typing import Any

from broker.clock import isoformat
from broker.delivery import Delivery
from broker.handoff import HandoffNotice, Team
from broker.intake import Request, RequestStatus
from broker.protocol.events import SPECS
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


def event_json(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = {"seq": event.seq, "type": event.type, "at": isoformat(event.at),
                            "author": event.author, **event.data}
    spec = SPECS.get(event.type)  # None for a kind stored by an older broker
    if spec is not None:
        # Stored as epoch seconds: ISO 8601 on the wire, as the event kind declares.
        for name in spec.times & event.data.keys():
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
        "decided_by": None if handoff.decided_by is None else
        {"id": handoff.decided_by, "name": notice.decider_name},
        "reason": handoff.reason,
    }


def team_json(team: Team) -> dict[str, Any]:
    return {"team_id": team.id, "name": team.name, "member_ids": list(team.member_ids),
            "lead_ids": list(team.lead_ids), "message_email": team.message_email}


def request_json(request: Request, now: float) -> dict[str, Any]:
    """A request as its team's technicians see it: the form's values and the target."""
    waiting = request.status in (RequestStatus.WAITING, RequestStatus.ACCEPTED,
                                 RequestStatus.UNANSWERED)
    return {
        "request_id": request.id, "kind": request.kind.value, "status": request.status.value,
        "team_id": request.team_id, "session_id": request.session_id,
        "severity": request.severity.value, "name": request.name, "email": request.email,
        "phone": request.phone, "description": request.description,
        "fields": request.fields, "language": request.language,
        "created_at": isoformat(request.created_at), "due_at": isoformat(request.due_at),
        "alert_at": isoformat(request.alert_at),
        # Until the first response: how long is left (0 once it is due).
        "remaining_seconds": max(0, round(request.due_at - now))
        if waiting and request.first_response_at is None and request.answered_at is None
        else None,
        "first_response_at": _time(request.first_response_at),
        "alerted_at": _time(request.alerted_at), "breached_at": _time(request.breached_at),
        "closed_at": _time(request.closed_at), "accepted_by": request.accepted_by,
        "answered_at": _time(request.answered_at), "answered_by": request.answered_by,
        "answer_session_id": request.answer_session_id,
    }
