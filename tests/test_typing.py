"""The typing indicator: relayed both ways, never stored, at most once a second per
typist (coalesced, never losing a stop), also between two broker nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.core import Broker
from broker.schema import events

from .cluster import cluster
from .cluster_support import Socket as NodeSocket
from .cluster_support import _start_and_join
from .conftest import Socket, Tech, join, open_socket, start_session


async def _pair(client: TestClient, tech: Tech) -> tuple[str, Socket, Socket]:
    """An active session with both its technician's and its end user's socket open."""
    started = await start_session(client, tech)
    joined = await join(client, started["key"])
    technician = await open_socket(client, started["session_id"], tech.token)
    user = await open_socket(client, started["session_id"], joined["participant_token"])
    return started["session_id"], technician, user


async def _typing(socket: Socket, typing: bool) -> None:
    await socket.ws.send_json({"type": "chat.typing", "typing": typing})


async def _frames_until_message(socket: Socket, text: str) -> list[dict[str, Any]]:
    """The `typing` frames `socket` gets until the message `text` arrives."""
    seen = []
    while True:
        frame = await socket.next()
        if frame["type"] == "typing":
            seen.append(frame)
        elif frame["type"] == "event" and frame["event"].get("text") == text:
            return seen


async def test_typing_goes_both_ways_and_is_never_stored(
        client: TestClient, broker: Broker, clock: FakeClock, tech: Tech) -> None:
    session_id, technician, user = await _pair(client, tech)
    async with broker.engine.connect() as conn:
        stored = await conn.scalar(sa.select(sa.func.count()).select_from(events))
    await _typing(user, True)
    assert await technician.next("typing") == {
        "type": "typing", "typing": True,
        "author": {"role": "end_user", "name": "Guest", "sender": user.welcome["you"]["sender"]}}
    await _typing(technician, True)
    frame = await user.next("typing")
    assert (frame["author"]["role"], frame["author"]["name"], frame["typing"]) == (
        "technician", "Alice", True)
    clock.advance(1)
    await _typing(user, False)
    assert (await technician.next("typing"))["typing"] is False
    # Nobody hears their own typing, and none of it is an event.
    await user.say("Done typing", "u1")
    assert await _frames_until_message(user, "Done typing") == []
    assert await _frames_until_message(technician, "Done typing") == []
    async with broker.engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(events)) == stored + 1
    again = await open_socket(client, session_id, tech.token)
    assert [event["type"] for event in again.replayed] == ["created", "joined", "message"]
    for socket in (technician, user, again):
        await socket.close()


async def test_at_most_one_relay_a_second_and_the_last_state_wins(
        client: TestClient, clock: FakeClock, tech: Tech) -> None:
    _, technician, user = await _pair(client, tech)
    # A burst within one second: the first goes out at once, the rest wait for the
    # second to be over, and then only the last state goes out.
    for typing in (True, False, True, True, False):
        await _typing(user, typing)
    assert [f["typing"] for f in [await technician.next("typing"),
                                  await technician.next("typing")]] == [True, False]
    await user.say("marker 1", "m1")
    assert await _frames_until_message(technician, "marker 1") == []
    # A change back within the second, to what the others were told: nothing more.
    clock.advance(1)
    await _typing(user, True)
    await _typing(user, False)
    await _typing(user, True)
    assert (await technician.next("typing"))["typing"] is True
    clock.advance(1)  # past the second: a repeat goes out (the others' pages wait for it)
    await _typing(user, True)
    assert (await technician.next("typing"))["typing"] is True
    clock.advance(1)
    await _typing(user, False)
    clock.advance(1)
    await _typing(user, False)  # a second "stopped" tells nobody anything
    await user.say("marker 2", "m2")
    assert [f["typing"] for f in await _frames_until_message(technician, "marker 2")] == [False]
    await technician.close()
    await user.close()


async def test_a_malformed_typing_frame_is_an_error(client: TestClient, tech: Tech) -> None:
    _, technician, user = await _pair(client, tech)
    for frame in ({"type": "chat.typing"}, {"type": "chat.typing", "typing": "yes"},
                  {"type": "chat.typing", "typing": 1}):
        await user.ws.send_json(frame)
        error = await user.next("error")
        assert error["code"] == "bad_message", error
    await user.ws.send_json({"type": "ping"})
    await user.next("pong")  # still usable
    await user.say("after the errors", "a1")
    assert await _frames_until_message(technician, "after the errors") == []
    await technician.close()
    await user.close()


async def test_a_typist_whose_socket_closes_stops_typing(client: TestClient,
                                                         tech: Tech) -> None:
    _, technician, user = await _pair(client, tech)
    await _typing(technician, True)
    assert (await user.next("typing"))["typing"] is True
    await technician.close()
    stopped = await user.next("typing")
    assert (stopped["author"]["role"], stopped["typing"]) == ("technician", False)
    await user.close()


async def test_typing_crosses_nodes(tmp_path: Path) -> None:
    async with cluster(tmp_path) as nodes, aiohttp.ClientSession() as http:
        one, two = nodes.nodes
        alice = await nodes.technician("alice@example.com", "Alice")
        session_id, participant = await _start_and_join(http, one, two, alice, "Maria")
        technician = await NodeSocket.open(http, one, session_id, alice)
        user = await NodeSocket.open(http, two, session_id, participant)
        await user.presence(technician=True, end_user=True)
        await user.ws.send_json({"type": "chat.typing", "typing": True})
        frame = await technician.wait(lambda f: f["type"] == "typing")
        assert (frame["author"]["name"], frame["typing"]) == ("Maria", True)
        await technician.ws.send_json({"type": "chat.typing", "typing": True})
        frame = await user.wait(lambda f: f["type"] == "typing")
        assert (frame["author"]["name"], frame["typing"]) == ("Alice", True)
        await technician.close()
        await user.wait(lambda f: f["type"] == "typing" and not f["typing"])
        await user.close()
