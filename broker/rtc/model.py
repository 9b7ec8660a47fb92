"""A share: one screen shown by one peer to the other, with its own small state machine.

A share is not a session state: a session can have shares come and go while it runs (and
while its end user reconnects). At most one share is live in a session at a time; the
technician switches direction by stopping one and starting the other.

    requested ──consent──▶ consented ──start──▶ active ◀──resume/pause──▶ paused
        │                      │                  │                          │
        └──refuse──▶ refused   └──────────────────┴────── stop ─────────────┴──▶ stopped

A share the technician makes from their own screen starts in `consented`: the one who
shows is the one who asked. The states and their table are the wire's vocabulary, so they
live in broker/protocol/rtc.py; this module is the one place a share moves through them.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ..errors import IllegalTransition
from ..protocol.rtc import (
    CONTROL_TRANSITIONS,
    TRANSITIONS,
    ControlState,
    Direction,
    ShareState,
    Source,
)
from ..sessions import Actor

__all__ = ["CONTROL_TRANSITIONS", "SHARE_ID", "TRANSITIONS", "ControlState", "Direction", "Peer",
           "Share", "ShareState", "Source"]

SHARE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclasses.dataclass(frozen=True, slots=True)
class Peer:
    """One side of a share: a session participant, by the sender name its socket has."""

    sender: str
    role: str
    name: str

    @classmethod
    def of(cls, actor: Actor) -> Peer:
        return cls(actor.sender, actor.role.value, actor.name)

    def public(self) -> dict[str, Any]:
        return {"sender": self.sender, "role": self.role, "name": self.name}


class Share:
    """One share's identity (fixed) and state (changed only through `set_state`)."""

    def __init__(self, session_id: str, share_id: str, direction: Direction, source: Source,
                 sharer: Peer, viewer: Peer) -> None:
        if not SHARE_ID.match(share_id):
            raise ValueError("a share id has 1 to 64 letters, digits, '-' or '_'")
        if sharer.sender == viewer.sender:
            raise ValueError("a share needs two different peers")
        self.session_id = session_id
        self.id = share_id
        self.direction = direction
        self.source = source
        self.sharer = sharer
        self.viewer = viewer
        self._state = ShareState.first(direction)
        self.paused_by: str | None = None
        self._control = ControlState.NONE

    @classmethod
    def restore(cls, session_id: str, share_id: str, direction: Direction, source: Source,
                sharer: Peer, viewer: Peer, state: ShareState, paused_by: str | None,
                control: ControlState) -> Share:
        """A share as it was stored (by this node or another): taken as it is, not moved."""
        share = cls(session_id, share_id, direction, source, sharer, viewer)
        share._state = state
        share.paused_by = paused_by if state is ShareState.PAUSED else None
        share._control = control
        return share

    @property
    def state(self) -> ShareState:
        return self._state

    @property
    def control(self) -> ControlState:
        return self._control

    def set_control(self, new: ControlState) -> None:
        """The one place remote control of this share changes."""
        if new not in CONTROL_TRANSITIONS[self._control]:
            raise IllegalTransition(f"remote control cannot go from {self._control} to {new}")
        self._control = new

    def set_state(self, new: ShareState, by: str | None = None) -> None:
        """The one place a share's state changes. `by` is who did it (for pauses)."""
        if new not in TRANSITIONS[self._state]:
            raise IllegalTransition(f"a share cannot go from {self._state} to {new}")
        self._state = new
        self.paused_by = by if new is ShareState.PAUSED else None

    def peer(self, sender: str) -> Peer | None:
        if sender == self.sharer.sender:
            return self.sharer
        if sender == self.viewer.sender:
            return self.viewer
        return None

    def other(self, sender: str) -> Peer:
        return self.viewer if sender == self.sharer.sender else self.sharer

    def public(self) -> dict[str, Any]:
        """The fields every share event carries."""
        return {"share_id": self.id, "direction": self.direction.value,
                "source": self.source.value, "sharer": self.sharer.sender,
                "viewer": self.viewer.sender, "sharer_name": self.sharer.name,
                "viewer_name": self.viewer.name, "control": self._control.value}
