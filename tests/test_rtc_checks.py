"""Screen sharing's checks: malformed SDP and candidates are answered with an error, those
of aiortc and browsers pass; ICE servers with TURN credentials (the TURN REST API) for each
participant, none unless configured; unusable ICE settings refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest

from broker.clock import FakeClock
from broker.errors import InvalidInput
from broker.rtc import check_candidate, check_sdp, turn_credentials
from broker.settings import Settings

from .conftest import Tech
from .rtc_pair_support import Pair, consented_share, open_pair
from .rtc_pair_support import pair as pair  # noqa: F401,PLC0414 - a fixture
from .rtc_pair_support import settings as settings  # noqa: F401,PLC0414 - a fixture
from .rtc_support import CANDIDATE, SDP, error_for, nothing_more, send
from .rtc_support import netns as netns  # noqa: F401,PLC0414 - a fixture

BAD_SDP = [
    "",
    "hello",
    "v=1\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
    SDP.replace("a=ice-pwd", "a=ice-pwx"),
    SDP.replace(f"a=fingerprint:sha-256 {SDP.split('sha-256 ')[1].split(chr(13))[0]}\r\n", ""),
    SDP.replace("m=video 9 UDP/TLS/RTP/SAVPF 96", "m=video nine UDP/TLS/RTP/SAVPF 96"),
    SDP.replace("s=-", "s=\x00"),
    SDP.replace("typ host", "typ nowhere"),
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",  # no media
    "v=0\r\n" + "a=x\r\n" * 13000,
]
BAD_CANDIDATES = [
    "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ",
    "candidate:1 1 udp 2130706431 127.0.0.1 70000 typ host",
    "candidate:1 1 sctp 2130706431 127.0.0.1 5000 typ host",
    "candidate:1 0 udp 2130706431 127.0.0.1 5000 typ host",
    "candidate:1 1 udp 99999999999 127.0.0.1 5000 typ host",
    "candidate:1 1 udp 1 bad_host! 5000 typ host",
    "candidate:1 1 udp 1 127.0.0.1 5000 typ host raddr",
    "1 1 udp 1 127.0.0.1 5000 typ host",
    "candidate:" + "x" * 600,
]


@pytest.mark.parametrize("sdp", BAD_SDP)
async def test_malformed_sdp_is_answered_with_an_error(pair: Pair, sdp: str) -> None:
    await consented_share(pair)
    await send(pair.user, "share.start", id="s1")
    error = await error_for(pair.user, "rtc.offer", id="s1", sdp=sdp)
    # A NUL is no text in any frame: refused before the frame is read (so without its ref).
    assert error["code"] in ("bad_sdp", "frame_too_large", "bad_text"), error
    assert error["ref"] == "s1" or error["code"] in ("frame_too_large", "bad_text")
    assert (error["code"] == "bad_text") == ("\x00" in sdp)
    await send(pair.tech, "rtc.ready", id="s1")
    await pair.tech.next("rtc.config")
    await nothing_more(pair.tech)  # nothing reached the viewer


@pytest.mark.parametrize("candidate", BAD_CANDIDATES)
async def test_malformed_candidates_are_answered_with_an_error(
        pair: Pair, candidate: str) -> None:
    await consented_share(pair)
    error = await error_for(pair.tech, "rtc.candidate", id="s1", candidate=candidate)
    assert (error["code"], error["ref"]) == ("bad_candidate", "s1")
    error = await error_for(pair.tech, "rtc.candidate", id="s1", candidate=CANDIDATE,
                            sdp_mline_index=5000)
    assert error["code"] == "bad_candidate"
    error = await error_for(pair.tech, "rtc.candidate", id="s1", candidate=17)
    assert error["code"] == "bad_message"



async def test_ice_servers_come_with_turn_credentials_for_each_participant(
        pair: Pair, clock: FakeClock, settings: Settings) -> None:
    await consented_share(pair)
    configs = {}
    for socket in (pair.tech, pair.user):
        await send(socket, "rtc.ready", id="s1")
        configs[socket.welcome["you"]["sender"]] = await socket.next("rtc.config")
    for sender, config in configs.items():
        stun, turn = config["ice_servers"]
        assert stun == {"urls": ["stun:127.0.0.1:3478"]}
        assert turn["urls"] == ["turn:127.0.0.1:3478?transport=udp"]
        expiry = int(clock.now()) + 7200
        assert turn["username"] == f"{expiry}:{pair.session_id}.{sender}"
        expected = base64.b64encode(hmac.new(b"s3cret", turn["username"].encode(),
                                             hashlib.sha1).digest()).decode()
        assert turn["credential"] == expected
        assert config["ice_transport_policy"] == "all"
        assert config["expires_at"].startswith("2027-01-15T")
    assert configs[pair.tech_sender]["ice_servers"][1]["username"] != \
        configs[pair.user_sender]["ice_servers"][1]["username"]


async def test_no_ice_servers_unless_configured(
        aiohttp_client: Any, tmp_path: Path, clock: FakeClock) -> None:
    from web import create_app
    from web.state import get_broker

    client = await aiohttp_client(create_app(Settings(data_dir=tmp_path / "d"), clock=clock))
    broker = get_broker(client.app)
    technician = await broker.technicians.add("a@example.com", "A", "correct horse battery")
    pair = await open_pair(client, Tech(technician,
                                        await broker.technicians.create_token(technician.id)))
    await consented_share(pair)
    await send(pair.user, "rtc.ready", id="s1")
    config = await pair.user.next("rtc.config")
    assert config["ice_servers"] == [] and config["expires_at"] is None



async def test_the_sdp_and_candidates_of_aiortc_pass(netns: None) -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection, VideoStreamTrack

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTrack(VideoStreamTrack())
        await pc.setLocalDescription(await pc.createOffer())
        check_sdp(pc.localDescription.sdp)
        candidates = [line[2:] for line in pc.localDescription.sdp.splitlines()
                      if line.startswith("a=candidate:")]
        assert candidates
        for candidate in candidates:
            check_candidate(candidate, "0", 0)
    finally:
        await pc.close()


def test_sdp_and_candidates_of_browsers_pass() -> None:
    check_sdp(SDP)
    check_sdp(SDP.replace("\r\n", "\n"))
    check_candidate("")
    check_candidate(CANDIDATE, "0", 0)
    check_candidate("candidate:3 1 udp 2122262783 3b0e4f8e-7c2e-4a56-9f0a-1d2c3b4a5e6f.local "
                    "54321 typ host generation 0 ufrag Ab12 network-id 1")
    check_candidate("candidate:5 1 tcp 1518280447 ::1 9 typ host tcptype active")
    check_candidate("candidate:7 1 udp 41885439 127.0.0.1 49152 typ relay raddr 0.0.0.0 "
                    "rport 0")
    with pytest.raises(InvalidInput):
        check_candidate(CANDIDATE, "x" * 65)


def test_turn_credentials_follow_the_turn_rest_api() -> None:
    username, password = turn_credentials("north", "alice", 1_700_000_000)
    assert username == "1700000000:alice"
    # The same as `echo -n 1700000000:alice | openssl dgst -sha1 -hmac north -binary | base64`
    assert password == base64.b64encode(hmac.new(b"north", b"1700000000:alice",
                                                 hashlib.sha1).digest()).decode()


@pytest.mark.parametrize(("overrides", "complaint"), [
    ({"ice_servers": "http://example.com"}, "is not a stun:"),
    ({"ice_servers": "turn:127.0.0.1:3478"}, "set turn_secret"),
    ({"ice_transport_policy": "none"}, "all or relay"),
    ({"turn_credential_seconds": 0}, "must be positive"),
    ({"rtc_queue_limit": 0}, "must be positive"),
])
def test_settings_refuse_unusable_ice_settings(overrides: dict[str, Any], complaint: str) -> None:
    with pytest.raises(InvalidInput, match=complaint):
        Settings(**overrides)


