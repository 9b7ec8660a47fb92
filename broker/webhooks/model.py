"""Webhook endpoints, the events they subscribe to, and the state of each message.

A message is one event for one endpoint. Its life::

    pending ──claim──▶ sending ──2xx──▶ delivered
       ▲                  │
       └──── retrying ◀───┤ failure, attempts left (RETRY_DELAYS)
                          └──────────▶ failed (no attempts left)

A claim that its node never finished (it was killed) runs out at `claimed_until` and the
message is sent again: receivers de-duplicate by the `webhook-id` header, as the Standard
Webhooks specification asks of them.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from ..errors import InvalidInput


class EventType(enum.StrEnum):
    """What a webhook can be about (docs/webhooks.md has a payload of each)."""

    SESSION_CREATED = "session.created"
    SESSION_JOINED = "session.joined"
    SESSION_HANDED_OVER = "session.handed_over"
    SESSION_ENDED = "session.ended"
    FILE_UPLOADED = "file.uploaded"
    SHARE_STARTED = "share.started"
    SHARE_ENDED = "share.ended"
    DELIVERY_FAILED = "delivery.failed"
    REQUEST_CREATED = "request.created"
    REQUEST_TARGET_BREACHED = "request.target_breached"
    SURVEY_COMPLETED = "survey.completed"
    CLOSING_RECORDED = "closing.recorded"


# Sent on an admin's request to one endpoint, whatever it subscribes to.
TEST_EVENT = "webhook.test"


class MessageStatus(enum.StrEnum):
    PENDING = "pending"        # stored, not tried yet
    SENDING = "sending"        # a node is sending it now
    RETRYING = "retrying"      # failed; the next attempt is at next_attempt_at
    DELIVERED = "delivered"    # the receiver answered 2xx
    FAILED = "failed"          # every attempt failed; nothing more is tried

    @property
    def final(self) -> bool:
        return self in (MessageStatus.DELIVERED, MessageStatus.FAILED)


WAITING = (MessageStatus.PENDING, MessageStatus.RETRYING)  # a node may claim these
OPEN = (*WAITING, MessageStatus.SENDING)  # not finished: later ones of its queue wait

# Seconds from a failed attempt to the next (those of Standard Webhooks' reference
# implementation): 8 attempts over 27 h 35 min, so a receiver may be down for a day.
RETRY_DELAYS = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
MAX_URL_LENGTH = 2000
MAX_DESCRIPTION = 200


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """A registered receiver. The secret itself is never part of it."""

    id: str
    url: str
    description: str
    event_types: tuple[EventType, ...]
    enabled: bool
    disabled_reason: str | None
    rotating_until: float | None  # the previous secret still signs until then
    failing_since: float | None
    active_since: float  # made or enabled again then: it gets the events since
    created_at: float
    updated_at: float

    def __post_init__(self) -> None:
        if len(set(self.event_types)) != len(self.event_types):
            raise ValueError("an endpoint lists each event type once")

    def wants(self, event_type: str) -> bool:
        return event_type in self.event_types


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """One event for one endpoint, and how its delivery went (the delivery log)."""

    id: int
    endpoint_id: str
    event_id: str
    event_type: str
    session_id: str | None
    status: MessageStatus
    attempts: int
    next_attempt_at: float | None  # None once final
    response_status: int | None
    error: str | None
    created_at: float
    updated_at: float
    delivered_at: float | None

    @classmethod
    def from_row(cls, row: Any) -> Message:
        status = MessageStatus(row.status)
        return cls(row.id, row.endpoint_id, row.event_id, row.event_type, row.session_id,
                   status, row.attempts, None if status.final else row.next_attempt_at,
                   row.response_status, row.error, row.created_at, row.updated_at,
                   row.delivered_at)


def event_types(raw: Any) -> tuple[EventType, ...]:
    """A subscription as a client sent it: a non-empty list of known event types."""
    if not isinstance(raw, list) or not raw or not all(isinstance(t, str) for t in raw):
        raise InvalidInput("events must be a non-empty list of event types.",
                           code="invalid_events")
    unknown = sorted(set(raw) - set(EventType))
    if unknown:
        raise InvalidInput(f"Unknown event types: {', '.join(unknown)[:200]}.",
                           code="invalid_events")
    return tuple(EventType(t) for t in sorted(set(raw)))
