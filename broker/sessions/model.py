"""Session states, their transition table, and the value objects sessions are made of."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from ..errors import IllegalTransition


class SessionState(enum.StrEnum):
    WAITING = "waiting"            # key issued, no end user yet
    ACTIVE = "active"              # end user joined and connected
    RECONNECTING = "reconnecting"  # end user's connection dropped; the window runs
    ENDED = "ended"


TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    SessionState.WAITING: frozenset({SessionState.ACTIVE, SessionState.ENDED}),
    SessionState.ACTIVE: frozenset({SessionState.RECONNECTING, SessionState.ENDED}),
    SessionState.RECONNECTING: frozenset({SessionState.ACTIVE, SessionState.ENDED}),
    SessionState.ENDED: frozenset(),
}


def check_transition(current: SessionState, new: SessionState) -> None:
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(f"a session cannot go from {current} to {new}")


class Access(enum.IntEnum):
    """What a technician may do with a session; higher values include the lower ones."""

    NONE = 0
    CANDIDATE = 1     # offered the session (directly or through a queue): may read
    COLLABORATOR = 2  # invited in, or stayed after handing over: may read and write
    OWNER = 3
    ADMIN = 4


class Role(enum.StrEnum):
    TECHNICIAN = "technician"
    END_USER = "end_user"


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who does something in a session: a technician (by id) or a participant (by id)."""

    role: Role
    id: int
    name: str

    @property
    def sender(self) -> str:
        """The stable sender name stored with events, used to de-duplicate resends."""
        return f"{'t' if self.role is Role.TECHNICIAN else 'p'}{self.id}"

    def public(self) -> dict[str, Any]:
        return {"role": self.role.value, "name": self.name, "sender": self.sender}


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    """A snapshot of one session as stored. `technician_id` (and its name) is None while
    nobody owns it: a customer's request waiting in a team queue (broker/intake)."""

    id: str
    technician_id: int | None
    technician_name: str | None
    state: SessionState
    created_at: float
    started_at: float | None
    ended_at: float | None
    end_reason: str | None
    end_user_name: str | None
    key_expires_at: float | None
    reconnect_deadline: float | None = None
    collaborator_ids: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One stored, numbered thing that happened in a session.

    `data` holds the type's own fields (``text`` for a message, ``reason`` for an end);
    `author` is who caused it, or None for the broker.
    """

    session_id: str
    seq: int
    type: str
    at: float
    author: dict[str, Any] | None
    data: dict[str, Any]
    client_id: str | None = None

    def __post_init__(self) -> None:
        if self.seq < 1:
            raise ValueError("sequence numbers start at 1")


@dataclasses.dataclass(frozen=True, slots=True)
class Signal:
    """Something for a session's open sockets that is not stored or numbered: progress
    of a transfer, WebRTC signaling. `frame` is a protocol message; `to` limits it to one
    participant (by sender name), `exclude` keeps it from one (usually its author)."""

    session_id: str
    frame: Any
    to: str | None = None
    exclude: str | None = None

    def for_actor(self, sender: str) -> bool:
        return (self.to is None or self.to == sender) and self.exclude != sender


@dataclasses.dataclass(frozen=True, slots=True)
class Takeover:
    """A participant opened a new socket (`connection`): their older sockets, on any node,
    close (a reload or a reconnect is not a second participant)."""

    session_id: str
    sender: str
    connection: str
