"""The session socket: chat both ways, resume by sequence number, de-duplication, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broker.protocol.chat import ChatSend
from broker.protocol.session import CloseCode, Pong
from web.state import get_broker
from web.ws import Connection, Participant, get_frame_handlers

from .conftest import Socket, Tech, join, open_socket, start_session


@pytest.fixture
async def pair(client: TestClient, tech: Tech) -> AsyncIterator[tuple[Socket, Socket, str]]:
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    technician = await open_socket(client, started["session_id"], tech.token)
    user = await open_socket(client, started["session_id"], joined["participant_token"])
    try:
        yield technician, user, started["session_id"]
    finally:
        await technician.close()
        await user.close()


async def test_welcome_and_replay(pair: tuple[Socket, Socket, str]) -> None:
    technician, user, _ = pair
    assert technician.welcome["you"]["role"] == "technician"
    assert user.welcome["you"] == {"role": "end_user", "name": "Guest", "sender": "p1"}
    assert user.welcome["session"]["technician"]["name"] == "Alice"
    assert [e["type"] for e in user.replayed] == ["created", "joined"]
    assert [e["seq"] for e in user.replayed] == [1, 2]


async def test_messages_both_ways(pair: tuple[Socket, Socket, str]) -> None:
    technician, user, _ = pair
    await user.say("my printer is on fire", "u1")
    ack = await user.next("chat.ack")
    assert ack == {"type": "chat.ack", "id": "u1", "seq": 3}
    seen = await technician.next_event("message")
    assert seen["text"] == "my printer is on fire"
    assert seen["author"]["role"] == "end_user" and seen["seq"] == 3
    await technician.say("please step away from it", "t1")
    assert (await user.next_event("message"))["text"] == "please step away from it"


async def test_resend_is_stored_once(client: TestClient, tech: Tech,
                                     pair: tuple[Socket, Socket, str]) -> None:
    technician, user, session_id = pair
    for _ in range(3):
        await user.say("hello?", "same-id")
        assert (await user.next("chat.ack"))["seq"] == 3
    await user.say("next", "other-id")
    assert (await user.next("chat.ack"))["seq"] == 4
    texts = [(await technician.next_event("message"))["text"] for _ in range(2)]
    assert texts == ["hello?", "next"]
    response = await client.get(f"/api/v1/sessions/{session_id}/events", headers=tech.auth)
    stored = [e["text"] for e in (await response.json())["events"] if e["type"] == "message"]
    assert stored == ["hello?", "next"]


async def test_resend_after_restart_of_memory_is_still_once(
        client: TestClient, tech: Tech, pair: tuple[Socket, Socket, str]) -> None:
    _, user, session_id = pair
    await user.say("before", "early-id")
    assert (await user.next("chat.ack"))["seq"] == 3
    get_broker(client.app).journal.forget(session_id)  # as after a broker restart
    await user.say("before", "early-id")
    assert (await user.next("chat.ack"))["seq"] == 3


async def test_resume_after_seq_gets_exactly_the_missed(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    session_id, token = started["session_id"], joined["participant_token"]
    for i in range(5):
        response = await client.post(f"/api/v1/sessions/{session_id}/messages",
                                     headers=tech.auth, json={"text": f"m{i}"})
        assert (await response.json())["seq"] == 3 + i
    user = await open_socket(client, session_id, token, after=4)
    try:
        assert [e["seq"] for e in user.replayed] == [5, 6, 7]
        assert [e["text"] for e in user.replayed] == ["m2", "m3", "m4"]
        assert user.last_seq == 7
    finally:
        await user.close()
    response = await client.get(f"/api/v1/sessions/{session_id}/events?after=6",
                                headers=tech.auth)
    events = (await response.json())["events"]
    # The user's socket closed: their reconnect window started.
    assert [(e["seq"], e["type"]) for e in events] == [(7, "message"), (8, "disconnected")]


@pytest.mark.parametrize("frame, code", [
    ("not json", "bad_json"),
    ("[1, 2]", "bad_message"),
    ('{"type": "launch.missiles"}', "unknown_type"),
    ('{"type": "chat.send", "id": "x"}', "bad_message"),
    ('{"type": "chat.send", "id": 5, "text": "hi"}', "bad_message"),
    ('{"type": "chat.send", "id": "x", "text": "   "}', "message_empty"),
    ('{"type": "chat.send", "id": "x", "text": "' + "a" * 4097 + '"}', "message_too_long"),
    ('{"type": "chat.send", "id": "' + "x" * 65 + '", "text": "hi"}', "invalid_input"),
    ('{"type": "hello"}', "already_authenticated"),
])
async def test_protocol_errors_keep_the_socket_usable(pair: tuple[Socket, Socket, str],
                                                      frame: str, code: str) -> None:
    technician, user, _ = pair
    await user.ws.send_str(frame)
    error = await user.next("error")
    assert error["code"] == code
    await user.say("still here", "after-error")
    assert (await user.next("chat.ack"))["id"] == "after-error"
    assert (await technician.next_event("message"))["text"] == "still here"


async def test_multibyte_limit_counts_bytes(pair: tuple[Socket, Socket, str]) -> None:
    _, user, _ = pair
    await user.say("ü" * 2048, "fits")  # 4096 bytes
    assert (await user.next("chat.ack"))["id"] == "fits"
    await user.say("ü" * 2049, "too-long")
    assert (await user.next("error"))["code"] == "message_too_long"


async def test_binary_frames_and_ping(pair: tuple[Socket, Socket, str]) -> None:
    _, user, _ = pair
    await user.ws.send_bytes(b"\x00\x01")
    assert (await user.next("error"))["code"] == "bad_message"
    await user.ws.send_json({"type": "ping"})
    assert (await user.next("pong")) == {"type": "pong"}


async def test_flood_is_refused(pair: tuple[Socket, Socket, str]) -> None:
    _, user, _ = pair
    for i in range(30):
        await user.say(f"spam {i}", f"s{i}")
    codes = []
    for _ in range(30):
        frame = await user.next()
        while frame["type"] not in ("chat.ack", "error"):
            frame = await user.next()
        codes.append(frame.get("code", frame["type"]))
    assert codes.count("chat.ack") == 20
    assert codes.count("rate_limited") == 10


async def test_end_reaches_both_sides_and_closes(client: TestClient, tech: Tech,
                                                 pair: tuple[Socket, Socket, str]) -> None:
    technician, user, session_id = pair
    response = await client.post(f"/api/v1/sessions/{session_id}/end", headers=tech.auth)
    assert response.status == 200
    for socket in (technician, user):
        ended = await socket.next_event("ended")
        assert ended["reason"] == "ended_by_technician"
        assert await socket.close_code() == 4010
    late = await client.post(f"/api/v1/sessions/{session_id}/messages", headers=tech.auth,
                             json={"text": "anyone?"})
    assert late.status == 409
    assert (await late.json())["error"] == "session_ended"
    again = await client.post(f"/api/v1/sessions/{session_id}/end", headers=tech.auth)
    assert again.status == 200  # ending twice is harmless


async def test_ended_session_replays_then_closes(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    await client.post(f"/api/v1/sessions/{started['session_id']}/end", headers=tech.auth)
    user = await open_socket(client, started["session_id"], joined["participant_token"])
    try:
        assert [e["type"] for e in user.replayed] == ["created", "joined", "ended"]
        assert await user.close_code() == 4010
    finally:
        await user.close()


async def test_second_socket_replaces_the_first(client: TestClient, tech: Tech,
                                                pair: tuple[Socket, Socket, str]) -> None:
    technician, user, session_id = pair
    token_socket = await open_socket(client, session_id, tech.token)
    try:
        assert await technician.close_code() == 4000
        await user.say("to the new one", "n1")
        assert (await token_socket.next_event("message"))["text"] == "to the new one"
    finally:
        await token_socket.close()


async def test_waiting_session_technician_may_write(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    response = await client.post(f"/api/v1/sessions/{started['session_id']}/messages",
                                 headers=tech.auth, json={"text": "I'll be right with you"})
    assert response.status == 201
    joined = await join(client, started["key"])
    user = await open_socket(client, started["session_id"], joined["participant_token"])
    try:
        assert "I'll be right with you" in [e.get("text") for e in user.replayed]
    finally:
        await user.close()


class _StuckSocket:
    """A WebSocket whose peer reads nothing until `release` is set."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed_with: tuple[int, bytes] | None = None
        self.release = asyncio.Event()

    async def send_str(self, data: str) -> None:
        await self.release.wait()
        self.sent.append(data)

    async def close(self, *, code: int, message: bytes) -> None:
        self.closed_with = (code, message)


async def test_slow_consumer_is_disconnected_not_skipped() -> None:
    stuck = _StuckSocket()
    conn = Connection(stuck, 3, "test socket")  # type: ignore[arg-type]
    for _ in range(5):
        conn.send(Pong())
        await asyncio.sleep(0)
    assert conn.closing
    stuck.release.set()
    await conn.drain_and_stop()
    # The frame already being written finishes; the backlog is dropped, never reordered,
    # and the client learns why, so it reconnects and resumes by sequence number.
    assert stuck.sent == ['{"type":"pong"}']
    assert stuck.closed_with is not None and stuck.closed_with[0] == CloseCode.TOO_SLOW


@pytest.fixture
async def busy(aiohttp_client: Any, tmp_path: Any, clock: Any,
               database_url: str) -> tuple[TestClient, Tech]:
    """A broker whose chat allowance lets one technician post hundreds of messages."""
    from broker.settings import Settings
    from web import create_app

    client = await aiohttp_client(create_app(
        Settings(data_dir=tmp_path / "busy", chat_burst=1000, ws_send_queue=16,
                 database_url=database_url), clock=clock))
    broker = get_broker(client.app)
    technician = await broker.technicians.add("t@example.com", "T", "long enough pw")
    return client, Tech(technician, await broker.technicians.create_token(technician.id))


async def test_old_resend_is_answered_from_the_database(
        busy: tuple[TestClient, Tech]) -> None:
    client, tech = busy
    started = await start_session(client, tech)
    session_id = started["session_id"]
    url = f"/api/v1/sessions/{session_id}/messages"
    seqs = []
    for i in range(40):  # more than the journal remembers in memory
        response = await client.post(url, headers=tech.auth,
                                     json={"text": f"m{i}", "client_id": f"c{i}"})
        assert response.status == 201
        seqs.append((await response.json())["seq"])
    resend = await client.post(url, headers=tech.auth, json={"text": "m0", "client_id": "c0"})
    assert resend.status == 200
    assert (await resend.json())["seq"] == seqs[0]
    after = await client.post(url, headers=tech.auth, json={"text": "new", "client_id": "c99"})
    assert after.status == 201
    events = (await (await client.get(f"/api/v1/sessions/{session_id}/events",
                                      headers=tech.auth)).json())["events"]
    texts = [e["text"] for e in events if e["type"] == "message"]
    assert texts == [f"m{i}" for i in range(40)] + ["new"]


async def test_second_old_resend_gets_the_same_seq(busy: tuple[TestClient, Tech]) -> None:
    client, tech = busy
    started = await start_session(client, tech)
    url = f"/api/v1/sessions/{started['session_id']}/messages"
    first = await (await client.post(url, headers=tech.auth,
                                     json={"text": "m", "client_id": "c0"})).json()
    for i in range(1, 40):
        await client.post(url, headers=tech.auth, json={"text": f"m{i}", "client_id": f"c{i}"})
    for _ in range(2):
        again = await client.post(url, headers=tech.auth, json={"text": "m", "client_id": "c0"})
        assert (await again.json())["seq"] == first["seq"]


async def test_long_replay_keeps_to_the_queue(busy: tuple[TestClient, Tech]) -> None:
    client, tech = busy
    started = await start_session(client, tech)
    for i in range(100):
        await client.post(f"/api/v1/sessions/{started['session_id']}/messages",
                          headers=tech.auth, json={"text": f"m{i}"})
    socket = await open_socket(client, started["session_id"], tech.token)
    try:
        assert [e["seq"] for e in socket.replayed] == list(range(1, 102))
    finally:
        await socket.close()


async def test_oversized_frame_is_an_error_not_a_disconnect(
        pair: tuple[Socket, Socket, str]) -> None:
    _, user, _ = pair
    await user.ws.send_str('{"type":"chat.send","id":"x","text":"' + "a" * 70_000 + '"}')
    assert (await user.next("error"))["code"] == "frame_too_large"
    await user.say("fine", "after-big")
    assert (await user.next("chat.ack"))["id"] == "after-big"


async def test_chat_allowance_survives_reconnecting(client: TestClient, tech: Tech) -> None:
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    user = await open_socket(client, started["session_id"], joined["participant_token"])
    for i in range(20):
        await user.say(f"m{i}", f"id{i}")
        assert (await user.next("chat.ack"))["id"] == f"id{i}"
    await user.close()
    user = await open_socket(client, started["session_id"], joined["participant_token"],
                             after=22)
    try:
        await user.say("one more", "id20")
        assert (await user.next("error"))["code"] == "rate_limited"
    finally:
        await user.close()
    response = await client.post(f"/api/v1/sessions/{started['session_id']}/messages",
                                 json={"text": "via the API"}, headers={
                                     "Authorization": f"Bearer {joined['participant_token']}"})
    assert response.status == 429


def test_a_frame_has_one_handler(client: TestClient) -> None:
    """Two parts claiming one frame is a wiring mistake, found when the app is made."""
    handlers = get_frame_handlers(client.app)
    with pytest.raises(ValueError, match="chat.send"):
        handlers.add(ChatSend, _no_handler)


async def _no_handler(participant: Participant, message: ChatSend) -> None:
    raise AssertionError("never called")
