"""Who is typing ("Maria is typing…"), for a session's other participants; never stored.

Typing changes fast and matters only now, so it travels like presence: a `Signal` on the
session's topic, to this node's sockets and through the bus to other nodes', never an
event. Each participant's changes go out at most once per `interval`; what comes in
between is coalesced: when the interval is over, the last state goes out if it differs
from the one sent, so a burst costs one frame and a "stopped" is never lost.
"""

from __future__ import annotations

import asyncio
import math
from typing import Final

from ..bus import EventBus
from ..clock import Clock
from ..protocol.chat import Typing
from .journal import session_topic
from .model import Actor, Signal

INTERVAL_SECONDS: Final = 1.0


class Typist:
    """One participant's typing on one connection, as the others see it."""

    def __init__(self, session_id: str, actor: Actor, bus: EventBus, clock: Clock, *,
                 interval: float = INTERVAL_SECONDS) -> None:
        self._session_id = session_id
        self._actor = actor
        self._bus = bus
        self._clock = clock
        self._interval = interval
        self._sent = False  # what the others were told last
        self._sent_at = -math.inf
        self._wanted: bool | None = None  # a change that waits for the interval
        self._timer: asyncio.TimerHandle | None = None

    def typing(self, typing: bool) -> None:
        """The participant says they type (again: a refresh the others' pages wait for)
        or stopped."""
        now = self._clock.now()
        if now - self._sent_at >= self._interval:
            self._cancel()
            if typing or self._sent:  # a second "stopped" tells nobody anything
                self._send(typing, now)
            return
        self._wanted = typing
        if self._timer is None:
            delay = max(0.0, self._sent_at + self._interval - now)
            self._timer = asyncio.get_running_loop().call_later(delay, self._flush)

    def stop(self) -> None:
        """The connection closed: whoever was typing on it stopped. Said at once, as the
        last word."""
        self._cancel()
        if self._sent:
            self._send(False, self._clock.now())

    def _cancel(self) -> None:
        """Forget a change that waits: a newer one is sent now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wanted = None

    def _flush(self) -> None:
        self._timer = None
        wanted, self._wanted = self._wanted, None
        if wanted is not None and wanted != self._sent:
            self._send(wanted, self._clock.now())

    def _send(self, typing: bool, now: float) -> None:
        self._sent, self._sent_at = typing, now
        self._bus.publish(session_topic(self._session_id), Signal(
            self._session_id, Typing(self._actor.public(), typing), exclude=self._actor.sender))
