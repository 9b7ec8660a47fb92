"""Real WebRTC media between two aiortc peers, signaled through the broker.

Runs in a network namespace of its own with only loopback (tests/netns.py): every packet,
signaling and media, stays on 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.settings import Settings
from web import create_app

from .conftest import Tech, join, open_socket, start_session
from .rtc_peer import AiortcPeer
from .rtc_support import netns as netns  # noqa: F401,PLC0414 - a fixture


@pytest.fixture
def database_url() -> str:
    """SQLite always: inside the namespace no database server can be reached."""
    return ""


@pytest.fixture
async def client(netns: None, aiohttp_client: Any, settings: Settings,
                 clock: FakeClock) -> TestClient:
    return await aiohttp_client(create_app(settings, clock=clock))


async def peers(client: TestClient, tech: Tech, share_id: str, *, tech_shares: bool,
                user_connected: bool = True, offer_early: bool = False
                ) -> tuple[AiortcPeer, AiortcPeer | None, str, str]:
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    tech_socket = await open_socket(client, started["session_id"], tech.token)
    technician = AiortcPeer(tech_socket.ws, share_id, sharer=tech_shares,
                            offer_early=offer_early)
    user = None
    if user_connected:
        user_socket = await open_socket(client, started["session_id"],
                                        joined["participant_token"])
        user = AiortcPeer(user_socket.ws, share_id, sharer=not tech_shares)
    return technician, user, started["session_id"], joined["participant_token"]


async def test_the_end_users_screen_reaches_the_technician_and_pauses(
        client: TestClient, tech: Tech) -> None:
    technician, user, _, _ = await peers(client, tech, "view", tech_shares=False)
    assert user is not None
    try:
        await technician.share("share.request", direction="end_user_to_technician")
        await user.next_event("share.requested")
        await user.share("share.consent", accept=True)
        await technician.next_event("share.consented")
        await technician.share("rtc.ready")  # the viewer gets ready while the user picks
        await user.share("share.start")
        await user.share("rtc.ready")
        await technician.next_event("share.started")
        await asyncio.wait_for(technician.got_frame.wait(), 15)
        await technician.wait_frames(10)

        # The technician pauses: the end user's side stops sending, no frame arrives.
        await technician.share("share.pause")
        await user.next_event("share.paused")
        await user.pause_media(True)
        # Frames already on their way may still land; then nothing more comes.
        before = -1
        for _ in range(20):
            if technician.frames == before:
                break
            before = technician.frames
            await asyncio.sleep(0.5)
        else:
            raise AssertionError("frames still arriving 10 s after the pause")
        await asyncio.sleep(0.7)
        assert technician.frames == before
        await technician.share("share.resume")
        await user.next_event("share.resumed")
        await user.pause_media(False)
        await technician.wait_frames(10)

        await user.share("share.stop")
        stopped = await technician.next_event("share.stopped")
        assert stopped["author"]["role"] == "end_user"
    finally:
        await technician.close()
        await user.close()


async def test_an_offer_made_before_the_end_user_connects_is_not_lost(
        client: TestClient, tech: Tech) -> None:
    """The technician shows their screen and offers at once; the end user opens the page
    later and still gets the offer, answers, and sees the screen."""
    technician, _, session_id, token = await peers(
        client, tech, "show", tech_shares=True, user_connected=False, offer_early=True)
    user = None
    try:
        await technician.share("share.request", direction="technician_to_end_user")
        await technician.share("share.start")
        await technician.next_event("share.started")
        await technician.share("rtc.ready")
        async with asyncio.timeout(10):
            while technician.offers == 0:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # the offer waits at the broker

        user_socket = await open_socket(client, session_id, token)
        assert any(e["type"] == "share.started" for e in user_socket.replayed)
        user = AiortcPeer(user_socket.ws, "show", sharer=False)
        await user.share("rtc.ready")
        await asyncio.wait_for(user.got_frame.wait(), 15)
        await user.wait_frames(5)
        assert technician.offers == 1
    finally:
        await technician.close()
        if user is not None:
            await user.close()
