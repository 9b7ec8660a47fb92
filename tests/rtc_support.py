"""Helpers for the screen-sharing tests: share frames over a test socket, a well-formed SDP,
the loopback-only network namespace, and an aiortc peer that speaks the broker's protocol.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Socket
from .netns import NetnsUnavailable, loopback_only

FINGERPRINT = ":".join(["AB"] * 32)
SDP = "\r\n".join([
    "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
    "a=group:BUNDLE 0", "m=video 9 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0",
    "a=ice-ufrag:abcd", "a=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa",
    f"a=fingerprint:sha-256 {FINGERPRINT}", "a=setup:actpass", "a=mid:0", "a=sendonly",
    "a=rtpmap:96 VP8/90000",
    "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", ""])
CANDIDATE = "candidate:842163049 1 udp 1677729535 127.0.0.1 51234 typ host generation 0"


def must_run(reason: str) -> None:
    """Skip outside CI; fail on CI, where every external program must be there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"must run on CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def netns() -> Iterator[None]:
    """The test runs in its own network namespace with only loopback (tests/netns.py)."""
    try:
        context = loopback_only()
        context.__enter__()
    except (NetnsUnavailable, PermissionError, OSError) as exc:
        must_run(f"cannot make a network namespace: {exc}")
        return
    try:
        yield
    finally:
        context.__exit__(None, None, None)


async def send(socket: Socket, type_: str, **fields: Any) -> None:
    await socket.ws.send_json({"type": type_, **fields})


async def error_for(socket: Socket, type_: str, **fields: Any) -> dict[str, Any]:
    """Send a frame that must be refused; returns the error frame."""
    await send(socket, type_, **fields)
    return await socket.next("error")


async def next_rtc(socket: Socket) -> dict[str, Any]:
    """The next signaling or error frame, skipping events and presence."""
    while True:
        frame = await socket.next()
        if frame["type"].startswith("rtc.") or frame["type"] == "error":
            return frame


async def nothing_more(socket: Socket, seconds: float = 0.2) -> None:
    """Nothing but stored events arrives for a little while: no signaling, no error."""
    with contextlib.suppress(TimeoutError):
        while True:
            frame = await socket.ws.receive_json(timeout=seconds)
            if frame["type"] not in ("event", "presence"):
                raise AssertionError(f"unexpected frame {frame}")


async def ping_pong(socket: Socket) -> None:
    """A round trip, so everything the broker did for earlier frames has happened."""
    await send(socket, "ping")
    await socket.next("pong")


MEDIA_ARGS = [
    # A fake 1280x720 screen for getDisplayMedia, picked without a dialog.
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    # Loopback candidates, with real addresses instead of mDNS names (no multicast).
    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


@contextlib.asynccontextmanager
async def media_browser() -> Any:
    """Headless Chromium that can capture a (fake) screen; People for its contexts."""
    from playwright.async_api import async_playwright

    from .browser_support import CHROMIUM, LAUNCH_ARGS, People, require_chromium

    require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                   args=[*LAUNCH_ARGS, *MEDIA_ARGS])
        people = People(browser)
        try:
            yield people
        finally:
            try:
                await people.close()
            finally:
                await browser.close()
