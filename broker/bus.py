"""The event bus between the domain and whoever listens (sockets, dashboards, other nodes).

Topics are strings: ``session:<id>`` carries a session's events, ``technician:<id>``
carries changes to that technician's session list. Callbacks must not block: the
WebSocket edge puts messages into a bounded per-socket queue.

`LocalBus` is the in-process bus of the single-node default; `broker.redisbus.RedisBus`
carries the same messages between nodes. A bus between nodes can lose messages while it
is down: it then calls each subscriber's `on_resync`, and subscribers fill the gap from
the database (stored events have sequence numbers; see broker/sessions/catchup.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Callback = Callable[[Any], None]
Resync = Callable[[], None]


class EventBus(Protocol):
    def publish(self, topic: str, message: Any) -> None: ...

    def subscribe(self, topic: str, callback: Callback,
                  on_resync: Resync | None = None) -> Callable[[], None]:
        """Start calling `callback` for each message on `topic`; returns the unsubscribe.
        `on_resync` is called whenever messages on the topic may have been missed (the
        bus to other nodes reconnected, or the subscription just took effect there)."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the bus cannot carry messages right now (for /readyz)."""
        ...


class LocalBus:
    """The in-process bus of the single-node default. Nothing is ever missed, so
    `on_resync` is never called."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Callback]] = {}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        pass

    def publish(self, topic: str, message: Any) -> None:
        for callback in tuple(self._subscribers.get(topic, ())):
            try:
                callback(message)
            except Exception:  # one broken listener must not starve the others
                log.exception("subscriber of %s failed", topic)

    def subscribe(self, topic: str, callback: Callback,
                  on_resync: Resync | None = None) -> Callable[[], None]:
        self._subscribers.setdefault(topic, set()).add(callback)

        def unsubscribe() -> None:
            callbacks = self._subscribers.get(topic)
            if callbacks is not None:
                callbacks.discard(callback)
                if not callbacks:
                    del self._subscribers[topic]

        return unsubscribe

    def subscriber_count(self, topic: str) -> int:
        return len(self._subscribers.get(topic, ()))
