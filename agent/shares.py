"""The session's shares as the agent knows them: rebuilt from the session's events, like
the browser pages do, so that a restarted agent knows at once what was going on. The
states and the state each event leaves a share in are the protocol's (broker/protocol/rtc.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from broker.protocol.events import EVENTS, ControlRequested, ShareEvent
from broker.protocol.rtc import SHARE_EVENTS, ControlState, ShareState

# The events that change a share, share.* and control.*: each carries the share as it is.
SHARE_KINDS = frozenset(name for name, kind in EVENTS.items() if issubclass(kind, ShareEvent))


@dataclasses.dataclass(slots=True)
class ShareView:
    """A share as the events describe it."""

    id: str
    state: ShareState
    sharer: str
    viewer_name: str
    control: ControlState = ControlState.NONE
    control_asked: bool = False   # the current control request was put to the person


class ShareBook:
    """Every share of the session, and which participant this agent is in it."""

    def __init__(self) -> None:
        self.me: str | None = None   # this agent's sender name, from `welcome`
        self._shares: dict[str, ShareView] = {}

    def apply(self, event: dict[str, Any]) -> ShareView:
        """A share.* or control.* event: the share as it is after it."""
        share = self._shares.get(event["share_id"])
        if share is None:
            share = ShareView(event["share_id"], ShareState.REQUESTED, event["sharer"],
                              event.get("viewer_name", ""))
            self._shares[share.id] = share
        share.state = SHARE_EVENTS.get(event["type"], share.state)
        if "control" in event:
            share.control = ControlState(event["control"])
        if event["type"] == ControlRequested.TYPE:
            share.control_asked = False  # a new request: ask again
        return share

    def get(self, share_id: str) -> ShareView | None:
        return self._shares.get(share_id)

    def mine(self) -> list[ShareView]:
        """The shares of this computer's screen."""
        return [share for share in self._shares.values() if share.sharer == self.me]

    def my_live_share(self) -> ShareView | None:
        for share in self.mine():
            if share.state.live:
                return share
        return None
