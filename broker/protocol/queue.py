"""A customer's place in a team's queue, and the teams' alerts about response targets."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import Message, client_message, server_message


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class QueueAsk(Message):
    """The customer's page asks for its place in the queue now (after `synced`: later
    changes come by themselves)."""

    TYPE = "queue.ask"


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class QueuePosition(Message):
    """The customer's place in their team's queue (1: next) and the expected wait in
    seconds (null: too few pick-ups of late to tell). Sent on `queue.ask` and whenever
    the place changes, until a technician takes the request."""

    TYPE = "queue.position"
    position: int
    estimated_wait_seconds: int | None


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class RequestAlert(Message):
    """Dashboard socket only: a customer's request in one of the technician's teams is
    about to miss its first-response target (`level` "due_soon": 80 % of the target has
    passed) or has missed it ("breached")."""

    TYPE = "request.alert"
    level: str
    request: dict[str, Any]
