"""TURN: coturn from Debian on 127.0.0.1 with use-auth-secret accepts the broker's
time-limited credentials and relays the media when both sides allow only relayed
candidates; it refuses expired credentials.

In a network namespace with only loopback, like every media test.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aioice import stun
from aioice.turn import create_turn_endpoint

from broker.rtc import turn_credentials

from .browser_support import LiveBroker, add_technician, expect, live_broker, log_in, start_session
from .rtc_peer import AiortcPeer
from .rtc_support import media_browser
from .rtc_support import netns as netns  # noqa: F401,PLC0414 - a fixture
from .turn_server import Turn, coturn

SECRET = "turn-test-secret"


@pytest.fixture
async def turn(netns: None, tmp_path: Path) -> AsyncIterator[Turn]:
    async with coturn(tmp_path / "turn", SECRET) as server:
        yield server


@pytest.fixture
async def live(turn: Turn, tmp_path: Path) -> AsyncIterator[LiveBroker]:
    async with live_broker(tmp_path / "data", ice_servers=turn.url, turn_secret=SECRET,
                           ice_transport_policy="relay") as broker:
        yield broker


class _Sink:
    def connection_made(self, transport: Any) -> None: ...
    def datagram_received(self, data: bytes, addr: Any) -> None: ...
    def error_received(self, exc: Exception) -> None: ...
    def connection_lost(self, exc: Exception | None) -> None: ...


async def allocate(turn: Turn, username: str, password: str) -> tuple[str, int]:
    """A TURN allocation; returns the relayed address. Raises when refused."""
    transport, _ = await create_turn_endpoint(_Sink, ("127.0.0.1", turn.port), username,
                                              password, lifetime=60)
    try:
        return transport.get_extra_info("sockname")  # type: ignore[no-any-return]
    finally:
        transport.close()


async def test_coturn_accepts_fresh_credentials_and_refuses_expired_ones(turn: Turn) -> None:
    now = int(time.time())
    relayed = await allocate(turn, *turn_credentials(SECRET, "s.p1", now + 600))
    assert relayed[0] == "127.0.0.1"
    for username, password in (turn_credentials(SECRET, "s.p1", now - 5),      # expired
                               turn_credentials("not-the-secret", "s.p1", now + 600)):
        with pytest.raises(stun.TransactionFailed) as refused:
            await allocate(turn, username, password)
        assert refused.value.response.attributes["ERROR-CODE"][0] == 401


async def test_media_flows_through_the_relay_with_the_brokers_credentials(
        live: LiveBroker, turn: Turn) -> None:
    technician = await add_technician(live, "Alice")
    session, key = await live.broker.sessions.start(technician)
    token = await live.broker.technicians.create_token(technician.id)
    ws_url = live.url(f"/api/v1/sessions/{session.id}/ws")
    async with ClientSession() as http:
        async with http.post(live.url("/api/v1/join"), json={"key": key.code}) as joined:
            participant = (await joined.json())["participant_token"]
        sockets = []
        for credential in (token, participant):
            ws = await http.ws_connect(ws_url)
            await ws.send_json({"type": "hello", "token": credential})
            async with asyncio.timeout(5):
                while (await ws.receive_json())["type"] != "synced":
                    pass
            sockets.append(ws)
        viewer = AiortcPeer(sockets[0], "relay", sharer=False)
        sharer = AiortcPeer(sockets[1], "relay", sharer=True)
        try:
            await viewer.share("share.request")
            await sharer.next_event("share.requested")
            await sharer.share("share.consent", accept=True)
            await viewer.next_event("share.consented")
            await viewer.share("rtc.ready")
            await sharer.share("share.start")
            await sharer.share("rtc.ready")
            config = await sharer.next("rtc.config")
            assert config["ice_transport_policy"] == "relay"
            (server,) = config["ice_servers"]
            assert server["urls"] == [turn.url]
            assert re.fullmatch(r"\d+:" + session.id + r"\.p\d+", server["username"])
            await asyncio.wait_for(viewer.got_frame.wait(), 20)
            await viewer.wait_frames(10)
            for peer in (viewer, sharer):
                assert peer.pc is not None
                gatherer = peer.pc.getTransceivers()[0].receiver.transport.transport \
                    .iceGatherer
                kinds = {c.type for c in gatherer.getLocalCandidates()}
                assert kinds == {"relay"}, kinds
        finally:
            await viewer.close()
            await sharer.close()
    log = turn.log.read_text(errors="replace")
    for sender in ("t1", "p1"):  # both sides allocated a relay with the broker's credentials
        assert f".{sender}>: incoming packet ALLOCATE processed, success" in log
        assert f".{sender}>: incoming packet CHANNEL_BIND processed, success" in log


async def test_chromium_to_chromium_through_the_relay(live: LiveBroker, turn: Turn) -> None:
    async with media_browser() as people:
        await add_technician(live, "Alice Example")
        dash = await people.page()
        await log_in(dash, live, "alice@example.com")
        _, pane = await start_session(dash)
        user = await people.page()
        await user.goto(await pane.locator('[data-role="join-url"]').input_value())
        await expect(pane.locator('[data-role="state"]')).to_have_text(
            re.compile("^Connected with"))
        await pane.get_by_role("button", name="Request screen").click()
        await user.get_by_role("dialog").get_by_role("button", name="Share my screen").click()
        video = pane.locator(".screen-viewer video")
        await dash.wait_for_function(
            "el => Number(el.dataset.framesDecoded || 0) >= 10",
            arg=await video.element_handle(), timeout=20000)
        people.assert_clean()
