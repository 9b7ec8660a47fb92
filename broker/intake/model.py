"""Customers' requests: their kinds, severities, statuses and response targets."""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any

from ..handoff.model import HandoffState


class Severity(enum.StrEnum):
    """Seed 003's levels, most urgent first."""

    CRITICAL = "critical"  # the service is down; business stops
    HIGH = "high"          # badly degraded
    STANDARD = "standard"  # partly lost, with impact
    BUGFIX = "bugfix"      # a non-critical fault
    REQUEST = "request"    # advice, a wish, a question


class RequestKind(enum.StrEnum):
    CHAT = "chat"        # the customer waits in the queue, in a session of their own
    MESSAGE = "message"  # left while nobody was online; answered later by email


class RequestStatus(enum.StrEnum):
    """Where a request stands. A chat's follows from its queue entry (a handoff): waiting
    while that is pending, accepted once a technician took it, closed if the session
    ended first. A message is unanswered until a technician starts a session from it."""

    WAITING = "waiting"
    ACCEPTED = "accepted"
    CLOSED = "closed"
    UNANSWERED = "unanswered"
    ANSWERED = "answered"


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """The first-response target of one severity: `seconds` of business time when
    `business_hours`, else of wall-clock time."""

    severity: Severity
    seconds: int
    business_hours: bool

    def __post_init__(self) -> None:
        if not 60 <= self.seconds <= 90 * 86400:
            raise ValueError("a response target is 60 seconds to 90 days")


# Seed 003: critical and high within an hour, around the clock; standard within two
# business hours; bugfix and requests within a business day (eight business hours).
DEFAULT_TARGETS = (
    Target(Severity.CRITICAL, 3600, False), Target(Severity.HIGH, 3600, False),
    Target(Severity.STANDARD, 2 * 3600, True), Target(Severity.BUGFIX, 8 * 3600, True),
    Target(Severity.REQUEST, 8 * 3600, True),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """One customer's request as stored, with its status."""

    id: str
    kind: RequestKind
    team_id: int
    session_id: str | None
    severity: Severity
    name: str
    email: str | None
    phone: str | None
    description: str
    fields: dict[str, str]
    language: str
    created_at: float
    due_at: float
    alert_at: float
    target: Target  # as it was when the request came
    status: RequestStatus
    first_response_at: float | None = None
    alerted_at: float | None = None
    breached_at: float | None = None
    closed_at: float | None = None
    answered_at: float | None = None
    answered_by: int | None = None
    answer_session_id: str | None = None
    accepted_by: int | None = None

    @classmethod
    def from_row(cls, row: Any) -> Request:
        """A row of intake_requests, joined with its handoff's state and decider."""
        kind = RequestKind(row.kind)
        if kind is RequestKind.MESSAGE:
            status = (RequestStatus.UNANSWERED if row.answered_at is None
                      else RequestStatus.ANSWERED)
        else:
            status = {HandoffState.PENDING.value: RequestStatus.WAITING,
                      HandoffState.ACCEPTED.value: RequestStatus.ACCEPTED}.get(
                row.handoff_state, RequestStatus.CLOSED)
        accepted_by = row.decided_by if status is RequestStatus.ACCEPTED else None
        return cls(row.id, kind, row.team_id, row.session_id, Severity(row.severity),
                   row.name, row.email, row.phone, row.description, json.loads(row.fields),
                   row.language, row.created_at, row.due_at, row.alert_at,
                   Target(Severity(row.severity), row.target_seconds, row.business_hours),
                   status,
                   row.first_response_at, row.alerted_at, row.breached_at, row.closed_at,
                   row.answered_at, row.answered_by, row.answer_session_id, accepted_by)


@dataclasses.dataclass(frozen=True, slots=True)
class Waiting:
    """A customer's place in a queue: what `position` they were last told."""

    request_id: str
    session_id: str
    participant_id: int
    told: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class Availability:
    """What the chat button shows: whether anyone of the team is online, and how long a
    new request would wait (None: too few pick-ups of late to tell)."""

    online: bool
    estimated_wait_seconds: int | None


class AlertLevel(enum.StrEnum):
    DUE_SOON = "due_soon"  # 80 % of the target has passed without a first response
    BREACHED = "breached"  # the target was missed


@dataclasses.dataclass(frozen=True, slots=True)
class TargetAlert:
    """For the dashboards of the request's team (and admins'): a target about to be, or
    having been, missed."""

    level: AlertLevel
    request: Request
    team_name: str
