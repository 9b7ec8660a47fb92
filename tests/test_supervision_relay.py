"""The shared screen for a watching supervisor (docs/supervision.md, "The shared screen"):
the relay's signaling between the watch socket and the technician's session socket, and
who may send it. The watch socket refuses every other frame; only a supervisor of the
session and the live share's technician exchange these frames, and the end user never
gets one of them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestClient

from tests.conftest import Socket, Tech, join, open_socket, start_session
from tests.rtc_support import CANDIDATE, SDP, nothing_more
from tests.test_supervision import _lead, _login, _team

MakeTech = Callable[..., Awaitable[Tech]]


class Watch:
    """A supervisor's watch socket, read up to `synced` on open."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, type_: str, **fields: Any) -> None:
        await self.ws.send_json({"type": type_, **fields})

    async def next(self, kind: str) -> dict[str, Any]:
        while True:
            frame = dict(await self.ws.receive_json(timeout=5))
            if frame["type"] == kind:
                return frame
            assert frame["type"] in ("event", "synced"), frame

    async def error(self, type_: str, **fields: Any) -> dict[str, Any]:
        await self.send(type_, **fields)
        return await self.next("error")


async def until_pong(socket: Socket) -> list[str]:
    """The types of the frames a socket gets up to the answer to a ping (so everything
    the broker did before has reached it)."""
    await socket.ws.send_json({"type": "ping"})
    frames: list[str] = []
    while not frames or frames[-1] != "pong":
        frames.append((await socket.ws.receive_json(timeout=5))["type"])
    return frames


async def told_nothing(user: Socket) -> None:
    """The end user's socket got no frame of the relay (nor any error)."""
    assert set(await until_pong(user)) <= {"event", "presence", "pong"}
    await nothing_more(user)


@contextlib.asynccontextmanager
async def watching(client: TestClient, who: Tech, session_id: str) -> AsyncIterator[Watch]:
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        await _login(client, http, who.technician.email)
        ws = await http.ws_connect(client.make_url(f"/api/v1/sessions/{session_id}/watch"))
        watch = Watch(ws)
        await watch.next("synced")
        yield watch
        await ws.close()


async def sharing(client: TestClient, owner: Tech, share_id: str = "s1"
                  ) -> tuple[str, Socket, Socket]:
    """A session of `owner` whose end user shares their screen: its id, the technician's
    socket and the end user's."""
    started = await start_session(client, owner)
    session_id = started["session_id"]
    joined = await join(client, started["key"])
    tech = await open_socket(client, session_id, owner.token)
    user = await open_socket(client, session_id, joined["participant_token"])
    await tech.ws.send_json({"type": "share.request", "id": share_id})
    await user.next_event("share.requested")
    await user.ws.send_json({"type": "share.consent", "id": share_id, "accept": True})
    await user.ws.send_json({"type": "share.start", "id": share_id})
    await tech.next_event("share.started")
    await user.next_event("share.started")
    return session_id, tech, user


@pytest.fixture
async def people(client: TestClient, make_tech: MakeTech) -> dict[str, Any]:
    """Anna leads Bob's team; Root is an admin; Carl leads another team; Dora is a
    technician of Bob's team, no lead."""
    root = await make_tech("Root", admin=True)
    anna, bob = await make_tech("Anna"), await make_tech("Bob")
    carl, dora = await make_tech("Carl"), await make_tech("Dora")
    printers = await _team(client, root, "Printers", anna, bob, dora)
    network = await _team(client, root, "Network", carl)
    await _lead(client, root, printers, anna)
    await _lead(client, root, network, carl)
    return {"root": root, "anna": anna, "bob": bob, "carl": carl, "dora": dora,
            "printers": printers}


async def test_the_screen_is_relayed_between_supervisor_and_technician_only(
        client: TestClient, people: dict[str, Any]) -> None:
    session_id, tech, user = await sharing(client, people["bob"])
    async with watching(client, people["anna"], session_id) as watch:
        await watch.send("watch.ready", share="s1")
        config = await watch.next("watch.config")
        assert config["share"] == "s1" and config["ice_transport_policy"] == "all"
        asked = await tech.next("watch.peer_ready")
        assert (asked["id"], asked["share"], asked["supervisor"]["name"]) == (
            config["id"], "s1", "Anna")
        relay = config["id"]
        await tech.ws.send_json({"type": "watch.offer", "id": relay, "sdp": SDP})
        assert (await watch.next("watch.offer"))["sdp"] == SDP
        await watch.send("watch.answer", id=relay, sdp=SDP)
        assert (await tech.next("watch.answer"))["id"] == relay
        await tech.ws.send_json({"type": "watch.candidate", "id": relay, "candidate": CANDIDATE,
                                 "sdp_mid": "0", "sdp_mline_index": 0})
        assert (await watch.next("watch.candidate"))["candidate"] == CANDIDATE
        await watch.send("watch.candidate", id=relay, candidate="", sdp_mid=None,
                         sdp_mline_index=None)
        assert (await tech.next("watch.candidate"))["candidate"] == ""
    # The supervisor left: the technician's page is told to close the relay.
    stopped = await tech.next("watch.stop")
    assert (stopped["id"], stopped["reason"]) == (relay, "left")
    # None of it reached the end user.
    await told_nothing(user)


async def test_the_watch_socket_refuses_everything_else(
        client: TestClient, people: dict[str, Any]) -> None:
    session_id, tech, user = await sharing(client, people["bob"])
    async with watching(client, people["root"], session_id) as watch:
        for type_, fields in [("chat.send", {"id": "x", "text": "hello"}),
                              ("control.request", {"id": "s1"}),
                              ("share.pause", {"id": "s1"}), ("rtc.answer", {"id": "s1",
                                                                          "sdp": SDP}),
                              ("watch.offer", {"id": "w1", "sdp": SDP})]:
            error = await watch.error(type_, **fields)
            assert error["code"] == "read_only", (type_, error)
            assert "read-only" in error["message"]
        # Malformed frames.
        await watch.ws.send_str("{not json")
        assert (await watch.next("error"))["code"] == "bad_json"
        assert (await watch.error("watch.ready"))["code"] == "bad_message"
        assert (await watch.error("watch.ready", share=7))["code"] == "bad_message"
        await watch.send("watch.ready", share="s1")
        relay = (await watch.next("watch.config"))["id"]
        assert (await watch.error("watch.answer", id=relay, sdp="hello"))["code"] == "bad_sdp"
        with_data = SDP.replace("m=video 9 UDP/TLS/RTP/SAVPF 96",
                                "m=application 9 UDP/DTLS/SCTP webrtc-datachannel")
        refused = await watch.error("watch.answer", id=relay, sdp=with_data)
        assert refused["code"] == "bad_sdp" and "video only" in refused["message"]
        bad = await watch.error("watch.candidate", id=relay, candidate="candidate:x")
        assert bad["code"] == "bad_candidate"
        # A relay id this socket did not get, made up or changed, names nothing.
        for other in ("w1", relay[:-1] + ("0" if relay[-1] != "0" else "1")):
            refused = await watch.error("watch.answer", id=other, sdp=SDP)
            assert (refused["code"], refused["ref"]) == ("watch_unknown", other)
        # Another share than the one shared now.
        assert (await watch.error("watch.ready", share="s9"))["code"] == "no_screen"
    await told_nothing(user)
    await tech.close()


async def test_only_the_shares_technician_relays_and_never_to_the_end_user(
        client: TestClient, people: dict[str, Any]) -> None:
    bob, dora = people["bob"], people["dora"]
    session_id, tech, user = await sharing(client, bob)
    async with watching(client, people["anna"], session_id) as watch:
        await watch.send("watch.ready", share="s1")
        relay = (await watch.next("watch.config"))["id"]
        await tech.next("watch.peer_ready")
        # The end user cannot send the supervisor anything.
        for type_ in ("watch.offer", "watch.candidate", "watch.stop"):
            fields = {"sdp": SDP} if type_ == "watch.offer" else {
                "candidate": CANDIDATE} if type_ == "watch.candidate" else {}
            await user.ws.send_json({"type": type_, "id": relay, **fields})
            error = await user.next("error")
            assert (error["code"], error["ref"]) == ("technician_only", relay)
        # Nor answer for the supervisor, nor ask for the screen.
        for type_ in ("watch.answer", "watch.ready"):
            await user.ws.send_json({"type": type_, "id": relay, "share": "s1", "sdp": SDP})
            assert (await user.next("error"))["code"] == "unknown_type"
        # A collaborator who is not the share's technician does not relay it.
        await client.post(f"/api/v1/sessions/{session_id}/collaborators", headers=bob.auth,
                          json={"technician_id": dora.technician.id})
        helper = await open_socket(client, session_id, dora.token)
        await helper.ws.send_json({"type": "watch.offer", "id": relay, "sdp": SDP})
        assert (await helper.next("error"))["code"] == "not_share_peer"
        # The technician of another session cannot reach this watcher.
        other_id, other_tech, _ = await sharing(client, bob, "s2")
        await other_tech.ws.send_json({"type": "watch.offer", "id": relay, "sdp": SDP})
        assert (await other_tech.next("error"))["code"] == "watch_unknown"
        # Offers with more than video are refused: a relay carries no control channel.
        with_data = SDP + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
        await tech.ws.send_json({"type": "watch.offer", "id": relay, "sdp": with_data})
        assert (await tech.next("error"))["code"] == "bad_sdp"
        # The technician's page closes the relay: the supervisor's page is told why.
        await tech.ws.send_json({"type": "watch.stop", "id": relay, "reason": "Not a reason!"})
        assert (await tech.next("error"))["code"] == "bad_message"
        await tech.ws.send_json({"type": "watch.stop", "id": relay, "reason": "failed"})
        stopped = await watch.next("watch.stop")
        assert (stopped["id"], stopped["reason"]) == (relay, "failed")
        await helper.close()
        await other_tech.close()
    await told_nothing(user)


async def test_a_paused_share_and_a_lost_lead_role_stop_the_relay(
        client: TestClient, people: dict[str, Any]) -> None:
    session_id, tech, user = await sharing(client, people["bob"])
    async with watching(client, people["anna"], session_id) as watch:
        await user.ws.send_json({"type": "share.pause", "id": "s1"})
        await tech.next_event("share.paused")
        assert (await watch.error("watch.ready", share="s1"))["code"] == "share_paused"
        await user.ws.send_json({"type": "share.resume", "id": "s1"})
        await tech.next_event("share.resumed")
        await watch.send("watch.ready", share="s1")
        relay = (await watch.next("watch.config"))["id"]
        # Anna is no lead any more: the next frame is refused, and nothing is relayed.
        await _lead(client, people["root"], people["printers"], people["anna"], lead=False)
        refused = await watch.error("watch.answer", id=relay, sdp=SDP)
        assert refused["code"] == "forbidden"
        assert (await watch.error("watch.ready", share="s1"))["code"] == "forbidden"
        frames = await until_pong(tech)
        assert "watch.answer" not in frames and frames.count("watch.peer_ready") == 1
