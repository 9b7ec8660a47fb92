"""A participant's attendance at a session, without sockets: arrival and takeover, the
ordered catch-up, and departure with its reconnect window (broker/sessions/attendance.py,
catchup.py). Real broker parts on a real database; the outbox keeps frames in memory and
the bus can lose, hold back and reorder messages as the one between nodes can."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker.clock import FakeClock
from broker.core import Broker
from broker.nodes import LocalRoster
from broker.protocol.session import CloseCode, Presence, Synced
from broker.sessions import Actor, Event, Session, SessionState
from broker.sessions.attendance import AttendanceService
from broker.settings import Settings

from .fakes.bus import FlakyBus
from .fakes.outbox import MemoryOutbox, Welcomed

WINDOW = 600


@dataclasses.dataclass
class Scene:
    broker: Broker
    bus: FlakyBus
    clock: FakeClock
    session_id: str
    technician: Actor
    end_user: Actor

    async def say(self, text: str, actor: Actor | None = None) -> int:
        seq, _ = await self.broker.sessions.post_message(self.session_id,
                                                         actor or self.technician, text)
        return seq

    async def session(self) -> Session:
        return await self.broker.sessions.get(self.session_id)


@pytest.fixture
async def scene(tmp_path: Path, database_url: str, clock: FakeClock) -> AsyncIterator[Scene]:
    bus = FlakyBus()
    broker = await Broker.open(Settings(data_dir=tmp_path, database_url=database_url,
                                        chat_burst=1000, reconnect_window_seconds=WINDOW),
                               clock, bus)
    try:
        technician = await broker.technicians.add("t@example.com", "T", "long enough pw")
        session, key = await broker.sessions.start(technician)
        redemption = await broker.sessions.redeem(code=key.code, name="Fox")
        yield Scene(broker, bus, clock, session.id,
                    broker.sessions.technician_actor(technician), redemption.actor)
    finally:
        await broker.close()


async def _attend(stack: contextlib.AsyncExitStack, scene: Scene, actor: Actor,
                  after: int = 0, service: AttendanceService | None = None
                  ) -> tuple[MemoryOutbox, Session]:
    """`actor` attends until `stack` closes; returns once they are caught up."""
    outbox = MemoryOutbox()
    service = service or scene.broker.attendance
    attendance = await service.arrive(await scene.session(), actor, outbox, after=after)
    stack.push_async_callback(service.leave, attendance)
    return outbox, attendance.session


def _types(outbox: MemoryOutbox) -> list[str]:
    return [event.type for event in outbox.events()]


async def test_catch_up_sends_the_missed_events_then_live_ones(scene: Scene) -> None:
    for i in range(9):  # more than two pages of the outbox's four
        last = await scene.say(f"m{i}")
    async with contextlib.AsyncExitStack() as stack:
        outbox, _ = await _attend(stack, scene, scene.technician, after=3)
        welcome = outbox.sent[0]
        assert isinstance(welcome, Welcomed) and welcome.actor == scene.technician
        assert outbox.seqs() == list(range(4, last + 1))
        assert outbox.sent[-2:] == [Synced(last), Presence(technician=True, end_user=False)]
        live = await scene.say("live")
        await outbox.until(lambda o: o.seqs()[-1:] == [live])
        assert outbox.seqs() == list(range(4, live + 1))


async def test_an_event_lost_between_nodes_is_read_from_the_database(scene: Scene) -> None:
    async with contextlib.AsyncExitStack() as stack:
        outbox, _ = await _attend(stack, scene, scene.technician)
        scene.bus.hold()
        first = await scene.say("first")
        second = await scene.say("second")
        events = [(topic, message) for topic, message in scene.bus.held()
                  if isinstance(message, Event)]
        assert [message.seq for _, message in events] == [first, second]
        # The later event arrives and the earlier one never does: the gap is filled from
        # the database, in order.
        scene.bus.deliver(*events[1])
        await outbox.until(lambda o: o.seqs()[-1:] == [second])
        # The lost one turning up late, or the later one twice, is no repeat.
        scene.bus.deliver(*events[0])
        scene.bus.deliver(*events[1])
        third = await scene.say("third")
        await outbox.until(lambda o: o.seqs()[-1:] == [third])
        assert outbox.seqs() == list(range(1, third + 1))


async def test_after_a_resync_the_missed_events_and_presence_follow(scene: Scene) -> None:
    async with contextlib.AsyncExitStack() as stack:
        outbox, _ = await _attend(stack, scene, scene.technician)
        mark = len(outbox.sent)
        scene.bus.down()
        lost = await scene.say("while the bus was down")
        scene.bus.up()
        await outbox.until(lambda o: len(o.sent) == mark + 2)
        assert outbox.sent[mark:] == [outbox.events()[-1],
                                      Presence(technician=True, end_user=False)]
        assert outbox.seqs() == list(range(1, lost + 1))


async def test_a_newer_connection_replaces_the_older_and_is_no_drop(scene: Scene) -> None:
    async with contextlib.AsyncExitStack() as stack:
        technician, _ = await _attend(stack, scene, scene.technician)
        older_stack = contextlib.AsyncExitStack()
        older, _ = await _attend(older_stack, scene, scene.end_user)
        newer, _ = await _attend(stack, scene, scene.end_user)
        assert older.closed_with == (CloseCode.REPLACED, "replaced by a newer connection")
        assert not newer.closing
        mark = len(technician.sent)
        await older_stack.aclose()
        # A reload is no drop: no window, and the technician is told of nothing but the
        # next line.
        assert (await scene.session()).state is SessionState.ACTIVE
        seq = await scene.say("still here?")
        await newer.until(lambda o: o.seqs()[-1:] == [seq])
        await technician.until(lambda o: o.seqs()[-1:] == [seq])
        assert technician.sent[mark:] == technician.events()[-1:]


async def test_a_connection_on_another_node_takes_over(scene: Scene, tmp_path: Path) -> None:
    several = Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:6379")
    node_a, node_b = (AttendanceService(several, scene.broker.sessions, LocalRoster(),
                                        scene.bus) for _ in range(2))
    async with contextlib.AsyncExitStack() as stack:
        on_a, _ = await _attend(stack, scene, scene.technician, service=node_a)
        on_b, _ = await _attend(stack, scene, scene.technician, service=node_b)
        assert on_a.closed_with == (CloseCode.REPLACED, "replaced by a newer connection")
        assert not on_b.closing


async def test_the_end_users_departure_starts_the_window_and_return_ends_it(
        scene: Scene) -> None:
    async with contextlib.AsyncExitStack() as stack:
        technician, _ = await _attend(stack, scene, scene.technician)
        async with contextlib.AsyncExitStack() as user_stack:
            user, _ = await _attend(user_stack, scene, scene.end_user)
            assert user.sent[-1] == Presence(technician=True, end_user=True)
            seen = user.seqs()[-1]
        await technician.until(lambda o: _types(o)[-1:] == ["disconnected"])
        assert Presence(technician=True, end_user=False) in technician.sent
        session = await scene.session()
        assert session.state is SessionState.RECONNECTING
        assert session.reconnect_deadline == scene.clock.now() + WINDOW
        scene.clock.advance(WINDOW - 1)
        assert await scene.broker.sessions.window.end_lapsed() == 0
        user, session = await _attend(stack, scene, scene.end_user, after=seen)
        assert session.state is SessionState.ACTIVE and session.reconnect_deadline is None
        assert _types(user) == ["disconnected", "reconnected"]
        await technician.until(lambda o: _types(o)[-1:] == ["reconnected"])


async def test_a_window_that_passes_ends_the_session(scene: Scene) -> None:
    async with contextlib.AsyncExitStack() as stack:
        technician, _ = await _attend(stack, scene, scene.technician)
        async with contextlib.AsyncExitStack() as user_stack:
            await _attend(user_stack, scene, scene.end_user)
        await technician.until(lambda o: _types(o)[-1:] == ["disconnected"])
        scene.clock.advance(WINDOW)
        assert await scene.broker.sessions.window.end_lapsed() == 1
        await technician.until(lambda o: o.closing)
        assert _types(technician)[-1] == "ended"
        assert technician.closed_with == (CloseCode.ENDED, "session ended")
        late, session = await _attend(stack, scene, scene.end_user)
        assert session.state is SessionState.ENDED
        assert _types(late)[-1] == "ended"
        assert late.closed_with == (CloseCode.ENDED, "session ended")

