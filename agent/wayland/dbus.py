"""The session bus from asyncio (dbus-fast): method calls that raise on error replies, and
signals waited for by object path and member."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

DBUS = ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus")


class BusError(RuntimeError):
    """A D-Bus error reply (`name`: e.g. org.freedesktop.DBus.Error.ServiceUnknown)."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(f"{name}: {text}")
        self.name = name


class SessionBus:
    """One connection to the session bus; signals are kept until somebody waits for them."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self._signals: dict[tuple[str, str], collections.deque[list[Any]]] = \
            collections.defaultdict(collections.deque)
        self._waiters: dict[tuple[str, str], asyncio.Event] = \
            collections.defaultdict(asyncio.Event)
        bus.add_message_handler(self._on_message)

    @classmethod
    async def connect(cls, address: str | None = None) -> SessionBus:
        """The session bus ($DBUS_SESSION_BUS_ADDRESS), or the one at `address`."""
        bus = await MessageBus(bus_address=address, bus_type=BusType.SESSION,
                               negotiate_unix_fd=True).connect()
        return cls(bus)

    @property
    def unique_name(self) -> str:
        return str(self.bus.unique_name)

    async def call(self, destination: str, path: str, interface: str, member: str,
                   signature: str = "", *body: Any) -> list[Any]:
        """A method call; its reply's body (file descriptors in place of their index)."""
        reply = await self.bus.call(Message(destination=destination, path=path,
                                            interface=interface, member=member,
                                            signature=signature, body=list(body)))
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            raise BusError(reply.error_name or "error", str(reply.body[0] if reply.body else ""))
        if reply.signature == "h":  # a file descriptor: the index into the ones passed
            return [reply.unix_fds[reply.body[0]]]
        return list(reply.body)

    def send(self, destination: str, path: str, interface: str, member: str,
             signature: str = "", *body: Any) -> None:
        """A method call whose reply nobody waits for (input events: in order, at once)."""
        from dbus_fast import MessageFlag

        self.bus.send(Message(destination=destination, path=path, interface=interface,
                              member=member, signature=signature, body=list(body),
                              flags=MessageFlag.NO_REPLY_EXPECTED))

    async def subscribe(self, rule: str) -> None:
        await self.call(*DBUS, "AddMatch", "s", rule)

    async def get_property(self, destination: str, path: str, interface: str,
                           name: str) -> Any:
        (value,) = await self.call(destination, path, "org.freedesktop.DBus.Properties",
                                   "Get", "ss", interface, name)
        return value.value

    async def signal(self, path: str, member: str, seconds: float | None) -> list[Any]:
        """The next `member` signal from `path` (one that came already counts); None:
        no time limit."""
        key = (path, member)
        async with asyncio.timeout(seconds):
            while not self._signals[key]:
                self._waiters[key].clear()
                await self._waiters[key].wait()
        return self._signals[key].popleft()

    def _on_message(self, message: Message) -> None:
        if message.message_type != MessageType.SIGNAL or not message.path or \
                not message.member:
            return
        key = (message.path, message.member)
        queue = self._signals[key]
        queue.append(list(message.body))
        while len(queue) > 16:
            queue.popleft()
        self._waiters[key].set()

    def close(self) -> None:
        self.bus.disconnect()
