"""A participant's attendance at a session: one connection, from arrival to departure.

The edge authenticates a socket and hands its outbox to `AttendanceService.arrive`, and
calls `leave` when it closes; the rest happens here:

- **Arrival.** The participant's older connection closes (REPLACED), on this node at
  once, on others through a `Takeover` on the session's topic: a reload or a reconnect is
  not a second participant. The roster counts the connection in, the others see a
  `presence` frame, and an end user's return ends a running reconnect window.
- **Catch-up.** The welcome, the events the participant missed, `synced`, the presence
  frame, then live events and signals, in order (see broker/sessions/catchup.py).
- **Departure.** The roster counts the connection out; when it was the end user's last,
  on every node, their reconnect window starts.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Protocol

from ..bus import EventBus
from ..protocol.session import CloseCode, Presence
from ..settings import Settings
from .catchup import CatchUp
from .journal import session_topic
from .model import Actor, Event, Role, Session, SessionState, Signal, Takeover
from .outbox import Outbox
from .service import SessionService


class Headcount(Protocol):
    """Who is connected to which session (broker/nodes.py: this node, or all of them)."""

    async def arrive(self, session_id: str, role: Role) -> bool:
        """Count a connection in; True if it is the first of its role here."""
        ...

    async def depart(self, session_id: str, role: Role) -> bool:
        """Count a connection out; True if it was the last of its role here."""
        ...

    async def present(self, session_id: str) -> frozenset[Role]: ...


class AttendanceService:
    """The participants attending sessions through this node."""

    def __init__(self, settings: Settings, sessions: SessionService, headcount: Headcount,
                 bus: EventBus) -> None:
        self._several_nodes = settings.several_nodes
        self._sessions = sessions
        self._headcount = headcount
        self._bus = bus
        # (session, sender) -> the participant's connection here; a newer one replaces it.
        self._here: dict[tuple[str, str], Attendance] = {}

    async def arrive(self, session: Session, actor: Actor, outbox: Outbox, *,
                     after: int) -> Attendance:
        """`actor` attends `session` through `outbox`, caught up from the event after
        `after`, until `leave`. (A plain pair of calls, not a context manager: a suspended
        generator per open socket would cost memory for nothing.)"""
        attendance = Attendance(session, actor, outbox, CatchUp(
            outbox, self._sessions, session.id, actor, after, self))
        previous = self._here.get(attendance.key)
        if previous is not None:
            previous.outbox.close(CloseCode.REPLACED, "replaced by a newer connection")
        self._here[attendance.key] = attendance
        try:
            await self._count_in(attendance)
            await attendance.start(self._bus)
            outbox.send(await self.presence(session.id))
        except BaseException:
            await self.leave(attendance)
            raise
        return attendance

    async def leave(self, attendance: Attendance) -> None:
        """The connection closed: count it out; the end user's last one starts the
        reconnect window."""
        await attendance.stop()
        if self._here.get(attendance.key) is attendance:
            del self._here[attendance.key]
        session_id, actor = attendance.session.id, attendance.actor
        if not await self._headcount.depart(session_id, actor.role):
            return
        self._bus.publish(session_topic(session_id), Signal(
            session_id, await self.presence(session_id), exclude=actor.sender))
        if actor.role is Role.END_USER:
            await self._sessions.window.end_user_left(session_id, actor)

    async def presence(self, session_id: str) -> Presence:
        roles = await self._headcount.present(session_id)
        return Presence(technician=Role.TECHNICIAN in roles, end_user=Role.END_USER in roles)

    async def _count_in(self, attendance: Attendance) -> None:
        """Older connections elsewhere close, the others see who is here now, and an end
        user's return ends a running reconnect window."""
        session, actor = attendance.session, attendance.actor
        topic = session_topic(session.id)
        if self._several_nodes:
            # The participant's older connection may be on another node: it closes there.
            attendance.id = secrets.token_urlsafe(12)
            self._bus.publish(topic, Takeover(session.id, actor.sender, attendance.id))
        if await self._headcount.arrive(session.id, actor.role):
            self._bus.publish(topic, Signal(session.id, await self.presence(session.id),
                                            exclude=actor.sender))
        if actor.role is Role.END_USER and (session.state is SessionState.RECONNECTING
                                            or self._several_nodes):
            if await self._sessions.window.end_user_back(session.id, actor):
                attendance.session = await self._sessions.get(session.id)


class Attendance:
    """One participant's connection to a session, from `arrive` to `leave`."""

    __slots__ = ("session", "actor", "outbox", "id", "_catch_up", "_unsubscribe")

    def __init__(self, session: Session, actor: Actor, outbox: Outbox,
                 catch_up: CatchUp) -> None:
        self.session = session  # as it is once the participant arrived
        self.actor = actor
        self.outbox = outbox
        self.id = ""  # set when other nodes must be able to name it (see Takeover)
        self._catch_up = catch_up
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.session.id, self.actor.sender

    async def start(self, bus: EventBus) -> None:
        """Listen to the session's topic, then send the welcome, the replay and `synced`."""
        self._unsubscribe = bus.subscribe(session_topic(self.session.id), self._on_message,
                                          self._catch_up.on_resync)
        self.outbox.send_welcome(self.session, self.actor)
        await self._catch_up.start(ended=self.session.state is SessionState.ENDED)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        await self._catch_up.stop()

    def _on_message(self, message: Event | Signal | Takeover) -> None:
        if isinstance(message, Event):
            self._catch_up.on_event(message)
        elif isinstance(message, Signal):
            if message.for_actor(self.actor.sender):
                self.outbox.send(message.frame)
        elif isinstance(message, Takeover):
            if message.sender == self.actor.sender and message.connection != self.id:
                self.outbox.close(CloseCode.REPLACED, "replaced by a newer connection")
