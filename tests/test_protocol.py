"""broker/protocol: the one definition of every frame, the data channel's included, and the
share vocabulary the clients rebuild states with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from broker.core import Broker
from broker.errors import ProtocolError
from broker.protocol.channel import (
    CHANNEL,
    Ack,
    ClipboardSet,
    Cursor,
    Down,
    Key,
    Move,
    Refused,
    Screen,
    Side,
    channel_from_dict,
    decode_channel,
    encode_channel,
)
from broker.protocol.events import SPECS, check_event
from broker.protocol.rtc import (
    CONTROL_TRANSITIONS,
    SHARE_EVENTS,
    TRANSITIONS,
    ControlState,
    Direction,
    ShareState,
)

from .conftest import Tech, start_session

ROOT = Path(__file__).resolve().parent.parent


def test_the_protocol_imports_nothing_of_the_server() -> None:
    """The agent imports broker.protocol and broker.credentials: they must not pull in
    SQLAlchemy or aiohttp's server, or the agent extra would need them."""
    probe = ("import sys, broker.protocol, broker.protocol.channel, broker.protocol.transfer, "
             "broker.credentials; "
             "print(','.join(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', "
             "'aiohttp')))))")
    argv = [sys.executable, "-c", probe]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True)  # noqa: S603
    loaded = done.stdout.strip().split(",") if done.stdout.strip() else []
    assert "sqlalchemy" not in loaded and "aiohttp.web" not in loaded, loaded
    assert not [name for name in loaded if name.startswith("sqlalchemy")], loaded


# -- the data channel -----------------------------------------------------------------------


def test_channel_messages_decode_as_the_page_sends_them() -> None:
    assert decode_channel('{"t":"move","x":10,"y":20}') == Move(10, 20)
    assert decode_channel('{"t":"down","x":5.7,"y":1,"b":"right","n":3}') == Down(
        5.7, 1, "right", n=3)
    assert decode_channel('{"t":"up","x":1,"y":1}').b == "left"  # type: ignore[attr-defined]
    assert decode_channel('{"t":"key","k":"ä","down":true}') == Key("ä", True)
    assert decode_channel('{"t":"key","k":"F12","down":false}') == Key("F12", False)
    assert decode_channel('{"t":"clipboard.set","text":"hi"}') == ClipboardSet("hi")
    assert decode_channel('{"t":"wheel","dx":0,"dy":-20}').T == "wheel"
    # The agent's own messages are decoded only as the agent's.
    assert decode_channel('{"t":"cursor","x":null,"y":null}', Side.AGENT) == Cursor(None, None)


def test_refused_channel_messages_carry_the_code_the_agent_answers_with() -> None:
    refusals = {
        "bad_event": [b'{"t":"move","x":1,"y":1}', "x" * (256 * 1024 + 1), "not json", "[1]",
                      '{"t":"move","x":"1","y":0}', '{"t":"move","x":true,"y":0}',
                      '{"t":"move","x":NaN,"y":0}', '{"t":"move","x":1e7,"y":0}',
                      '{"t":"down","x":1,"y":1,"b":"back"}', '{"t":"wheel","dx":0,"dy":21}',
                      '{"t":"key","k":"a"}', '{"t":"exec","cmd":"rm"}', "{}",
                      '{"t":"screen","w":1,"h":1}', '{"t":"move","x":1,"y":1,"n":"1"}',
                      '{"t":"clipboard.set","text":3}', '{"t":"clipboard.set","text":"\\ud800"}',
                      '{"t":"move","x":1,"y":1,"n":' + "[" * 100_000 + "]" * 100_000 + "}"],
        "unknown_key": ['{"t":"key","k":"Hyper","down":true}', '{"t":"key","k":"ab","down":true}',
                        '{"t":"key","k":"\\n","down":true}', '{"t":"key","k":65,"down":true}'],
    }
    for code, messages in refusals.items():
        for raw in messages:
            with pytest.raises(ProtocolError) as refused:
                decode_channel(raw)
            assert refused.value.code == code, raw


def test_channel_messages_encode_as_on_the_wire() -> None:
    assert json.loads(encode_channel(Screen(1280, 720))) == {"t": "screen", "w": 1280, "h": 720}
    assert json.loads(encode_channel(Cursor(None, None))) == {"t": "cursor", "x": None, "y": None}
    # An optional field that is not there stays out, as the page expects.
    assert json.loads(encode_channel(Refused("not_granted", "No."))) == {
        "t": "error", "code": "not_granted", "message": "No."}
    assert json.loads(encode_channel(Refused("rate_limited", "Slow.", n=4)))["n"] == 4
    assert json.loads(encode_channel(Move(1, 2))) == {"t": "move", "x": 1, "y": 2}
    # Every message survives a round trip, from the side that sends it.
    samples = [Ack(3, 1.5), Screen(1, 1), Key("Enter", True, n=2), ClipboardSet("x")]
    for message in samples:
        assert decode_channel(encode_channel(message), message.SIDE) == message


def test_every_channel_message_is_sent_by_one_side() -> None:
    viewer = {t for t, cls in CHANNEL.items() if cls.SIDE is Side.VIEWER}
    agent = {t for t, cls in CHANNEL.items() if cls.SIDE is Side.AGENT}
    assert viewer == {"move", "down", "up", "wheel", "key", "clipboard.get", "clipboard.set"}
    assert agent == {"screen", "control", "cursor", "clipboard", "clipboard.done", "ack",
                     "error"}
    with pytest.raises(ProtocolError):
        channel_from_dict({"t": "move", "x": 1, "y": 1}, Side.AGENT)


# -- the share's vocabulary -----------------------------------------------------------------


def test_share_events_follow_the_transition_table() -> None:
    assert ShareState.first(Direction.END_USER_TO_TECHNICIAN) is ShareState.REQUESTED
    assert ShareState.first(Direction.TECHNICIAN_TO_END_USER) is ShareState.CONSENTED
    assert set(SHARE_EVENTS.values()) == set(ShareState)
    reachable = {state for targets in TRANSITIONS.values() for state in targets}
    assert reachable | {ShareState.REQUESTED} == set(ShareState)
    for state in ShareState:
        assert state.live == bool(TRANSITIONS[state])
        assert not state.signaling or state.live
    assert set(CONTROL_TRANSITIONS) == set(ControlState)


# -- the stored events' kinds ---------------------------------------------------------------


def test_an_event_must_match_its_declared_kind() -> None:
    check_event("message", {"text": "Hello?"})
    check_event("created", {"expires_at": 1795469906.5})
    check_event("handed_over", {"from": "Alice", "to": "Bob", "from_id": 1, "to_id": 2,
                                "stays": False})
    refused = [("left", {}), ("message", {}), ("message", {"text": 3}),
               ("message", {"text": "x", "html": "<b>"}), ("created", {"expires_at": "soon"}),
               ("created", {"expires_at": True}), ("technician_left", {"name": "B", "id": "2"})]
    for type_name, data in refused:
        with pytest.raises(ValueError):
            check_event(type_name, data)
    assert SPECS["created"].times == {"expires_at"}
    assert SPECS["disconnected"].times == {"deadline"}
    assert not SPECS["message"].times


async def test_the_journal_stores_only_declared_events(client: TestClient, broker: Broker,
                                                       tech: Tech) -> None:
    session = await start_session(client, tech)
    sid = session["session_id"]
    with pytest.raises(ValueError):
        await broker.sessions.record(sid, "survey.answered", {"score": 5})
    with pytest.raises(ValueError):
        await broker.sessions.record(sid, "technician_joined", {"who": "Bob"})
    assert [e.type for e in await broker.sessions.events_after(sid)] == ["created"]
    # Its times reach the client as ISO 8601, because the kind says they are times.
    response = await client.get(f"/api/v1/sessions/{sid}/events", headers=tech.auth)
    created = (await response.json())["events"][0]
    assert created["type"] == "created" and created["expires_at"].endswith("+00:00")
