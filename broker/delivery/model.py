"""Deliveries: what was asked to be sent where, and how far it got."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any


class Channel(enum.StrEnum):
    SMS = "sms"
    EMAIL = "email"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"          # in our queue, not tried yet
    SENDING = "sending"          # an attempt is under way
    RETRYING = "retrying"        # a transient failure; another attempt is scheduled
    QUEUED = "queued"            # accepted by Twilio, not yet sent on
    SENT = "sent"                # handed on (Twilio sent it, or the SMTP server took it)
    DELIVERED = "delivered"      # Twilio reports it reached the phone
    UNDELIVERED = "undelivered"  # Twilio reports the carrier could not deliver it
    FAILED = "failed"            # permanently refused, or out of attempts
    INTERRUPTED = "interrupted"  # the broker stopped mid-attempt; not retried (no duplicate)
    CANCELLED = "cancelled"      # the key was used, revoked or expired before sending

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED,
                    DeliveryStatus.FAILED, DeliveryStatus.INTERRUPTED,
                    DeliveryStatus.CANCELLED})

# Twilio's MessageStatus values in status callbacks, as ours.
TWILIO_STATUS = {
    "accepted": DeliveryStatus.QUEUED, "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED, "sending": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT, "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED, "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED, "canceled": DeliveryStatus.CANCELLED,
}
# How far along each status is, so a late callback cannot move a delivery backwards.
PROGRESS = {DeliveryStatus.QUEUED: 1, DeliveryStatus.SENT: 2, DeliveryStatus.DELIVERED: 3,
            DeliveryStatus.UNDELIVERED: 3, DeliveryStatus.FAILED: 3,
            DeliveryStatus.CANCELLED: 3}


@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    at: float
    outcome: str
    detail: str


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """A message to send: a session's key (its invitation, asked for by a technician) or
    a notice (`content`: JSON of its subject, text and reply address; no session, no
    technician), such as a customer's message to a team (broker/intake)."""

    id: str
    session_id: str | None
    technician_id: int | None
    channel: Channel
    recipient: str
    language: str
    status: DeliveryStatus
    provider_id: str | None
    error: str | None
    attempts: int
    next_attempt_at: float | None
    created_at: float
    updated_at: float
    history: tuple[Attempt, ...] = ()
    content: str | None = None

    def __post_init__(self) -> None:
        if self.attempts < 0:
            raise ValueError("attempts cannot be negative")

    @property
    def final(self) -> bool:
        """Nothing more will happen: only a Twilio SMS reports on after being sent."""
        if self.status is DeliveryStatus.SENT:
            return not (self.channel is Channel.SMS and (self.provider_id or "").startswith("SM"))
        return self.status.final

    @classmethod
    def from_row(cls, row: Any, history: tuple[Attempt, ...] = ()) -> Delivery:
        return cls(row.id, row.session_id, row.technician_id, Channel(row.channel),
                   row.recipient, row.language, DeliveryStatus(row.status), row.provider_id,
                   row.error, row.attempts, row.next_attempt_at, row.created_at,
                   row.updated_at, history, row.content)
