"""An in-process `EventBus` that misbehaves like the bus between nodes can."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.bus import Callback, Resync


class FlakyBus:
    """Delivers to this process's subscribers, like broker.bus.LocalBus, but can also do
    what broker.redisbus.RedisBus does between nodes: lose messages while it is `down()`
    and call every subscriber's `on_resync` once it is `up()` again; or, after `hold()`,
    keep messages back until the test delivers them, late, in any order, or never."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[tuple[Callback, Resync | None]]] = {}
        self._down = False
        self._held: list[tuple[str, Any]] | None = None

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        if self._down:
            raise ConnectionError("the bus is down")

    def publish(self, topic: str, message: Any) -> None:
        if self._down:
            return
        if self._held is not None:
            self._held.append((topic, message))
            return
        self.deliver(topic, message)

    def subscribe(self, topic: str, callback: Callback,
                  on_resync: Resync | None = None) -> Callable[[], None]:
        entry = (callback, on_resync)
        self._subscribers.setdefault(topic, []).append(entry)
        return lambda: self._subscribers[topic].remove(entry)

    def deliver(self, topic: str, message: Any) -> None:
        for callback, _ in list(self._subscribers.get(topic, ())):
            callback(message)

    def down(self) -> None:
        self._down = True

    def up(self) -> None:
        self._down = False
        for entries in list(self._subscribers.values()):
            for _, on_resync in list(entries):
                if on_resync is not None:
                    on_resync()

    def hold(self) -> None:
        self._held = []

    def held(self) -> list[tuple[str, Any]]:
        """What was held back; from now on messages go out at once again."""
        held, self._held = self._held or [], None
        return held
