"""Value objects and states of handoffs."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from ..errors import IllegalTransition
from ..sessions.model import Access

__all__ = ["Access", "Availability", "Handoff", "HandoffNotice", "HandoffState", "Team"]


class HandoffState(enum.StrEnum):
    PENDING = "pending"      # offered to a technician, or waiting in a team queue
    ACCEPTED = "accepted"    # the receiver owns the session now
    DECLINED = "declined"    # the receiver said no; the session stays with the sender
    EXPIRED = "expired"      # nobody answered in time; the session stays with the sender
    CANCELLED = "cancelled"  # the sender took it back, or the session ended


TRANSITIONS: dict[HandoffState, frozenset[HandoffState]] = {
    HandoffState.PENDING: frozenset({HandoffState.ACCEPTED, HandoffState.DECLINED,
                                     HandoffState.EXPIRED, HandoffState.CANCELLED}),
    HandoffState.ACCEPTED: frozenset(),
    HandoffState.DECLINED: frozenset(),
    HandoffState.EXPIRED: frozenset(),
    HandoffState.CANCELLED: frozenset(),
}


def check_transition(current: HandoffState, new: HandoffState) -> None:
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(f"a handoff cannot go from {current} to {new}")


class Availability(enum.StrEnum):
    """Whether a technician can be reached, as the transfer dialog lists them."""

    ONLINE = "online"    # the dashboard is open
    AWAY = "away"        # logged in, dashboard closed
    OFFLINE = "offline"  # not logged in


@dataclasses.dataclass(frozen=True, slots=True)
class Team:
    id: int
    name: str
    member_ids: tuple[int, ...] = ()
    # Where customers' messages go while nobody of the team is online (broker/intake).
    message_email: str | None = None
    # Members who lead the team: they supervise its live sessions (broker/supervision).
    lead_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a team needs a name")


@dataclasses.dataclass(frozen=True, slots=True)
class Handoff:
    """A session offered to a technician or waiting in a team queue. `from_technician_id`
    is None for a customer's request, which nobody sent (broker/intake)."""

    id: str
    session_id: str
    from_technician_id: int | None
    to_technician_id: int | None
    to_team_id: int | None
    note: str
    keep_sender: bool
    state: HandoffState
    created_at: float
    deadline: float | None
    decided_at: float | None
    decided_by: int | None
    reason: str | None

    def __post_init__(self) -> None:
        if (self.to_technician_id is None) == (self.to_team_id is None):
            raise ValueError("a handoff goes to a technician or to a team queue, not both")

    @classmethod
    def from_row(cls, row: Any) -> Handoff:
        return cls(row.id, row.session_id, row.from_technician_id, row.to_technician_id,
                   row.to_team_id, row.note, row.keep_sender, HandoffState(row.state),
                   row.created_at, row.deadline, row.decided_at, row.decided_by, row.reason)


@dataclasses.dataclass(frozen=True, slots=True)
class HandoffNotice:
    """A handoff with the names a person needs to read it (sent to dashboards)."""

    handoff: Handoff
    from_name: str
    to_name: str | None
    team_name: str | None
    end_user_name: str | None
    session_state: str
    # Who accepted, declined or took it back: a queue's members learn who took it.
    decider_name: str | None = None
