"""The agent's Wayland parts on their own (tests/test_agent_wayland.py runs them together
under a headless mutter): the portal's restore token beside the credential, keys as
keysyms, and an input session that a desktop ends by itself."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from typing import Any

import pytest

from agent.control import InputUnavailable
from agent.state import ResumeRecord, ResumeState, StateStore
from agent.wayland.inject import WaylandInjector, keysym


def test_the_portals_restore_token_is_kept_beside_the_credential_owner_only(
        tmp_path: Path) -> None:
    store = StateStore(tmp_path / "agent" / "session.json")
    record = ResumeRecord(ResumeState("https://support.example.com", "s1", "sbp_" + "a" * 43),
                          store, autostart_chosen=False)
    record.keep_restore_token("3c1f0a2e-restore")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    loaded = store.load()
    assert loaded is not None and loaded.restore_token == "3c1f0a2e-restore"
    # A later run starts with it, and keeps the portal's next one in its place.
    again = ResumeRecord(loaded, store, autostart_chosen=False)
    assert again.restore_token == "3c1f0a2e-restore"
    again.keep_restore_token("5d7e-next")
    assert store.load().restore_token == "5d7e-next"  # type: ignore[union-attr]
    again.forget()   # the session is over: the token goes with the credential
    assert not store.path.exists()


def test_keys_become_keysyms_and_a_desktop_without_remote_desktop_is_view_only() -> None:
    assert keysym("a") == 0x61 and keysym("A") == 0x41 and keysym("é") == 0xE9
    assert keysym("€") == 0x010020AC
    assert (keysym("Enter"), keysym("Shift"), keysym("F12")) == (0xFF0D, 0xFFE1, 0xFFC9)
    injector = WaylandInjector(None, "no remote desktop here")
    with pytest.raises(InputUnavailable) as refused:
        asyncio.run(injector.open())
    assert refused.value.reason == "view_only"
    with pytest.raises(RuntimeError):
        injector.key("a", True)   # nothing reaches anything without a session


class MemoryInput:
    """An input session in memory (agent/wayland/desktop.py's InputSession): what reached
    the desktop, and a desktop that can end the session by itself."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, bool]] = []
        self.ended = asyncio.Event()
        self.closed = False

    def motion(self, x: float, y: float) -> None:
        pass

    def button(self, code: int, down: bool) -> None:
        self.sent.append(("button", code, down))

    def axis(self, axis: int, steps: int) -> None:
        pass

    def keysym(self, keysym: int, down: bool) -> None:
        self.sent.append(("key", keysym, down))

    async def close(self) -> None:
        self.closed = True

    async def flush(self) -> None:
        pass

    async def wait_closed(self) -> None:
        await self.ended.wait()


class MemoryDesktop:
    name = "memory"

    def __init__(self) -> None:
        self.sessions: list[MemoryInput] = []

    async def screen_cast(self, restore_token: str) -> Any:
        raise NotImplementedError

    async def remote_desktop(self) -> MemoryInput:
        self.sessions.append(MemoryInput())
        return self.sessions[-1]

    async def close(self) -> None:
        pass


async def test_input_wakes_the_keyboard_and_ends_when_the_desktop_ends_it() -> None:
    desktop = MemoryDesktop()
    injector = WaylandInjector(desktop)
    lost = asyncio.Event()
    await injector.open(lost.set)
    session = desktop.sessions[0]
    # The first key of a new virtual keyboard is lost unless something was pressed first.
    assert session.sent == [("key", 0xFFE1, True), ("key", 0xFFE1, False)]
    injector.key("a", True)
    injector.button("left", True)
    assert session.sent[-2:] == [("key", 0x61, True), ("button", 0x110, True)]
    session.ended.set()   # the person stopped it in the desktop's own indicator
    await asyncio.wait_for(lost.wait(), 5)
    injector.key("a", False)   # letting go afterwards is harmless
    with pytest.raises(RuntimeError):
        injector.key("b", True)
    # Control granted again: a new session; taking it back closes it.
    await injector.open(lost.set)
    injector.close()
    await asyncio.sleep(0)
    assert desktop.sessions[1].closed and not desktop.sessions[0].closed
