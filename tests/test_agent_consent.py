"""Remote control as the person at the computer decides (agent/consent.py): control starts
only after their "yes" and the broker's confirmation, and taking it back wins at any moment,
also in the round trip between the two."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from agent.capture import Monitor
from agent.consent import Controlled, RemoteControl
from agent.control import ControlSession, InputUnavailable, RecordingInjector
from agent.shares import ShareBook
from agent.tasks import Tasks
from broker.protocol import Message
from broker.protocol.channel import ChannelMessage, Control
from broker.protocol.rtc import ControlConsent, ControlStop

SCREEN = Monitor(1, 0, 0, 1280, 720)
KEY = "control:s1"


class MemoryUI:
    """The UI seam in memory: a question waits until the test answers or withdraws it."""

    def __init__(self) -> None:
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        self.asked: asyncio.Queue[str] = asyncio.Queue()
        self.controlled_by: list[str | None] = []
        self._open: dict[str, asyncio.Future[bool]] = {}

    def start(self, on_stop_control: Callable[[], None]) -> None:
        pass

    def say(self, text: str) -> None:
        pass

    async def ask(self, key: str, question: str) -> bool:
        self._open[key] = asyncio.get_running_loop().create_future()
        self.asked.put_nowait(key)
        return await self._open[key]

    def answer(self, key: str, value: bool) -> None:
        future = self._open.pop(key, None)
        if future is not None and not future.done():
            future.set_result(value)

    def withdraw(self, key: str) -> None:
        self.answer(key, False)

    def controlled(self, by: str | None, hotkey: str) -> None:
        self.controlled_by.append(by)

    def close(self) -> None:
        pass


class Side:
    """One share of this computer's screen, under RemoteControl: the frames it sends to
    the broker, what the technician's page is told, and what reaches the input system."""

    def __init__(self, injector: RecordingInjector | None = None) -> None:
        self.ui = MemoryUI()
        self.frames: asyncio.Queue[Message] = asyncio.Queue()
        self.told: list[ChannelMessage] = []
        self.injector = injector or RecordingInjector()
        self.session = ControlSession(self.injector, SCREEN)
        self.tasks = Tasks()
        self.book = ShareBook()
        self.book.me = "agent-1"
        self.control = RemoteControl(self.ui, self._send, self.book, self.tasks, "Ctrl+Alt+S")
        self.control.attach(Controlled("s1", self.session, self.told.append))

    async def _send(self, frame: Message) -> bool:
        self.frames.put_nowait(frame)
        return True

    async def event(self, kind: str, control: str = "none") -> None:
        """A share event from the broker, as the agent takes it."""
        share = self.book.apply({"type": kind, "share_id": "s1", "sharer": "agent-1",
                                 "viewer": "tech-1", "source": "agent",
                                 "viewer_name": "Alice Example", "control": control})
        if kind.startswith("control."):
            await self.control.reconcile(share)

    async def sent(self) -> Message:
        return await asyncio.wait_for(self.frames.get(), 5)

    async def asked(self) -> None:
        assert await asyncio.wait_for(self.ui.asked.get(), 5) == KEY

    def injects(self) -> bool:
        answer = self.session.handle({"t": "move", "x": 10, "y": 10})
        return answer is None


@pytest.fixture
async def side() -> AsyncIterator[Side]:
    side = Side()
    for kind in ("share.requested", "share.consented", "share.started"):
        await side.event(kind)
    yield side
    await side.tasks.close()


async def test_stop_between_the_yes_and_the_brokers_grant_wins(side: Side) -> None:
    await side.event("control.requested", "requested")
    await side.asked()
    side.ui.answer(KEY, True)
    assert await side.sent() == ControlConsent("s1", accept=True)
    side.control.revoke("revoked")          # /stop, before the broker confirms
    await side.event("control.granted", "granted")
    assert not side.session.granted and not side.injects()
    assert await side.sent() == ControlStop("s1", "revoked")
    await side.event("control.stopped")
    assert side.frames.empty()              # one stop, and no "agent_restarted" after it
    assert side.ui.controlled_by == [] and side.told == []
    assert side.injector.events == []

    # Asked again and allowed, control does start; the hotkey ends it.
    await side.event("control.requested", "requested")
    await side.asked()
    side.ui.answer(KEY, True)
    assert await side.sent() == ControlConsent("s1", accept=True)
    await side.event("control.granted", "granted")
    assert side.session.granted and side.injects()
    assert side.told == [Control(granted=True)]
    side.control.revoke("hotkey")
    assert not side.session.granted and not side.injects()
    assert await side.sent() == ControlStop("s1", "hotkey")
    assert side.ui.controlled_by == ["Alice Example", None]


async def test_stop_right_after_the_yes_sends_no_and_an_open_question_counts_as_no(
        side: Side) -> None:
    await side.event("control.requested", "requested")
    await side.asked()
    side.ui.answer(KEY, True)
    side.control.revoke("revoked")          # before the agent acted on the answer
    assert await side.sent() == ControlConsent("s1", accept=False)
    await side.event("control.refused")

    await side.event("control.requested", "requested")
    await side.asked()
    side.control.revoke("hotkey")           # while the question is still open
    assert await side.sent() == ControlConsent("s1", accept=False)
    await side.event("control.refused")
    assert side.frames.empty() and not side.session.granted
    assert side.ui.controlled_by == [] and side.injector.events == []


class DesktopInjector(RecordingInjector):
    """An injector with a session per control, as on Wayland (agent/wayland/inject.py):
    the desktop grants input (`open`) or refuses it, here as the test says."""

    def __init__(self, refuse: str = "") -> None:
        super().__init__()
        self.refuse = refuse
        self.opened = asyncio.Event()
        self.closed = 0

    async def open(self, on_lost: Callable[[], None] | None = None) -> None:
        if self.refuse:
            raise InputUnavailable("the desktop's dialog did not allow remote interaction",
                                   self.refuse)
        self.opened.set()

    def close(self) -> None:
        self.closed += 1


async def granted_by_the_person(side: Side) -> None:
    for kind in ("share.requested", "share.consented", "share.started"):
        await side.event(kind)
    await side.event("control.requested", "requested")
    await side.asked()
    side.ui.answer(KEY, True)
    assert await side.sent() == ControlConsent("s1", accept=True)
    await side.event("control.granted", "granted")


async def test_input_the_desktop_did_not_grant_is_reported_never_silently_dropped() -> None:
    side = Side(DesktopInjector(refuse="input_refused"))
    try:
        await granted_by_the_person(side)
        assert await side.sent() == ControlStop("s1", "input_refused")
        await side.event("control.stopped")
        assert not side.session.granted and not side.injects()
        assert side.told == [] and side.ui.controlled_by == []
        assert side.frames.empty()
    finally:
        await side.tasks.close()


async def test_a_desktop_input_session_opens_with_control_and_ends_with_every_key_let_go(
        ) -> None:
    injector = DesktopInjector()
    side = Side(injector)
    try:
        await granted_by_the_person(side)
        await asyncio.wait_for(injector.opened.wait(), 5)
        async with asyncio.timeout(5):
            while not side.session.granted:
                await asyncio.sleep(0.01)
        assert side.told == [Control(granted=True)]
        side.session.handle({"t": "key", "k": "Shift", "down": True})
        side.session.handle({"t": "down", "x": 5, "y": 5, "b": "left"})
        side.control.revoke("revoked")
        assert injector.events[-2:] == [("key", "Shift", False), ("button", "left", False)]
        assert injector.closed == 1 and not side.injects()
        assert await side.sent() == ControlStop("s1", "revoked")
    finally:
        await side.tasks.close()
