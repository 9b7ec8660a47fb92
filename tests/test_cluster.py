"""Two broker processes on different ports sharing PostgreSQL and Redis, with no sticky
routing: a technician on one node and the end user on the other chat, see each other's
presence and hand over; a key redeemed at both at once is redeemed once; a node killed
with SIGKILL loses nothing (its end users resume on the other node); Redis restarting
mid-session loses no message; a screen share works with its two peers on different nodes.
See tests/cluster.py for how the nodes are run."""

from __future__ import annotations

import asyncio
import random
import re
from pathlib import Path
from typing import Any

import aiohttp

from .chaos import ChaosParticipant, midway
from .cluster import TECH_PASSWORD, Node, RedisServer, cluster
from .netns import NetnsUnavailable, loopback_only
from .rtc_peer import AiortcPeer
from .rtc_support import must_run
from .test_chaos import _transcript, _verify


async def _post(http: aiohttp.ClientSession, url: str, token: str | None = None,
                **body: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(url, json=body, headers=headers) as response:
        return response.status, await response.json()


class Socket:
    """A session socket that keeps every frame it gets, by type."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: dict[int, dict[str, Any]] = {}
        self.frames: list[dict[str, Any]] = []
        self.reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, node: Node, session_id: str,
                   token: str) -> Socket:
        ws = await http.ws_connect(f"{node.base}/api/v1/sessions/{session_id}/ws")
        await ws.send_json({"type": "hello", "token": token, "after": 0})
        socket = cls(ws)
        socket.reader = asyncio.create_task(socket._read())
        await socket.wait(lambda f: f["type"] == "synced")
        return socket

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            frame = message.json()
            self.frames.append(frame)
            if frame["type"] == "event":
                seq = frame["event"]["seq"]
                assert seq not in self.events, f"event {seq} twice"
                assert not self.events or seq == max(self.events) + 1, (
                    f"event {seq} after {max(self.events)}: out of order or a gap")
                self.events[seq] = frame["event"]
        self.closed.set()

    async def wait(self, test: Any, seconds: float = 15) -> dict[str, Any]:
        async with asyncio.timeout(seconds):
            seen = 0
            while True:
                for frame in self.frames[seen:]:
                    if test(frame):
                        return frame
                seen = len(self.frames)
                await asyncio.sleep(0.01)

    async def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        frame = await self.wait(lambda f: f["type"] == "event" and f["event"]["type"] == kind
                                and all(f["event"].get(k) == v for k, v in fields.items()))
        return dict(frame["event"])

    async def presence(self, technician: bool, end_user: bool) -> None:
        await self.wait(lambda f: f == {"type": "presence", "technician": technician,
                                        "end_user": end_user})

    async def say(self, text: str, client_id: str) -> None:
        await self.ws.send_json({"type": "chat.send", "id": client_id, "text": text})

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            await self.reader


async def _start_and_join(http: aiohttp.ClientSession, at: Node, join_at: Node,
                          token: str, name: str = "Dana") -> tuple[str, str]:
    status, started = await _post(http, f"{at.base}/api/v1/sessions", token)
    assert status == 201, started
    status, joined = await _post(http, f"{join_at.base}/api/v1/join", key=started["key"],
                                 name=name)
    assert status == 200, joined
    return started["session_id"], joined["participant_token"]


async def _dashboard(node: Node, email: str) -> tuple[aiohttp.ClientSession,
                                                      aiohttp.ClientWebSocketResponse]:
    """A technician's browser: logged in through the form at `node`, dashboard socket open."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    status, _ = await _log_in(http, node, email, TECH_PASSWORD)
    assert status == 303
    ws = await http.ws_connect(f"{node.base}/api/v1/technician/ws",
                               headers={"Origin": node.base})
    return http, ws


async def _log_in(http: aiohttp.ClientSession, node: Node, email: str, password: str,
                  headers: dict[str, str] | None = None) -> tuple[int, str | None]:
    """The login form at `node`, filled in; the status and Retry-After."""
    async with http.get(f"{node.base}/login") as page:
        csrf = re.search(r'name="_csrf" value="([^"]+)"', await page.text())
    assert csrf
    async with http.post(f"{node.base}/login", data={
            "email": email, "password": password, "_csrf": csrf.group(1)},
            headers=headers, allow_redirects=False) as response:
        await response.read()
        return response.status, response.headers.get("Retry-After")


async def _next_of(ws: aiohttp.ClientWebSocketResponse, kind: str,
                   seconds: float = 15) -> dict[str, Any]:
    async with asyncio.timeout(seconds):
        while True:
            frame = dict(await ws.receive_json())
            if frame["type"] == kind:
                return frame


async def test_chat_presence_and_handoff_across_nodes(tmp_path: Path) -> None:
    async with cluster(tmp_path) as nodes, aiohttp.ClientSession() as http:
        one, two = nodes.nodes
        alice = await nodes.technician("alice@example.com", "Alice")
        await nodes.technician("bob@example.com", "Bob")
        session_id, participant = await _start_and_join(http, one, two, alice)

        technician = await Socket.open(http, one, session_id, alice)
        user = await Socket.open(http, two, session_id, participant)
        # Presence crosses nodes: each sees the other connected.
        await user.presence(technician=True, end_user=True)
        await technician.wait(lambda f: f["type"] == "presence" and f["end_user"])

        await user.say("Hello from node 2", "u1")
        await technician.event("message", text="Hello from node 2")
        await technician.say("Hello from node 1", "t1")
        await user.event("message", text="Hello from node 1")
        # A resend of an acknowledged message at the other node is still no second one.
        ack = await user.wait(lambda f: f["type"] == "chat.ack" and f["id"] == "u1")
        moved = await Socket.open(http, one, session_id, participant)
        await moved.say("Hello from node 2", "u1")
        again = await moved.wait(lambda f: f["type"] == "chat.ack" and f["id"] == "u1")
        assert again["seq"] == ack["seq"]
        # The older socket at node 2 was replaced by the one at node 1.
        await asyncio.wait_for(user.closed.wait(), 10)
        assert user.ws.close_code == 4000
        user = moved

        # Bob has his dashboard open at node 2; Alice hands over from node 1.
        bob_http, bob_dashboard = await _dashboard(two, "bob@example.com")
        try:
            # His dashboard is open on the other node: node 1 sees him online within a
            # heartbeat.
            async with asyncio.timeout(5):
                while True:
                    status, roster = await _get(http, f"{one.base}/api/v1/technicians", alice)
                    bob = next(t for t in roster["technicians"] if t["name"] == "Bob")
                    if bob["presence"] == "online":
                        break
                    await asyncio.sleep(0.1)
            bob_id = bob["id"]
            status, handoff = await _post(http, f"{one.base}/api/v1/sessions/{session_id}/"
                                          "transfer", alice, to_technician_id=bob_id,
                                          note="Printer still offline")
            assert status == 201, handoff
            offered = await _next_of(bob_dashboard, "handoff.update")
            assert offered["handoff"]["note"] == "Printer still offline"
            async with bob_http.post(
                    f"{two.base}/api/v1/handoffs/{handoff['handoff_id']}/accept",
                    headers={"Origin": two.base, "X-CSRF-Token": await _csrf(bob_http, two)}
            ) as accepted:
                assert accepted.status == 200, await accepted.text()
            await user.event("handed_over", to="Bob")
            await technician.event("handed_over", to="Bob")
            await asyncio.wait_for(technician.closed.wait(), 10)
            assert technician.ws.close_code == 4403  # Alice is out of the session
        finally:
            await bob_dashboard.close()
            await bob_http.close()
        await user.close()


async def _get(http: aiohttp.ClientSession, url: str, token: str) -> tuple[int, Any]:
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json()


async def _csrf(http: aiohttp.ClientSession, node: Node) -> str:
    async with http.get(f"{node.base}/dashboard") as page:
        match = re.search(r'data-csrf="([^"]+)"', await page.text())
    assert match
    return match.group(1)


async def test_the_same_key_redeemed_at_both_nodes_at_once_is_redeemed_once(
        tmp_path: Path) -> None:
    # Every loser counts as a failed guess from this address: allow plenty.
    async with cluster(tmp_path, redeem_free_failures=1000,
                       redeem_global_failures_per_minute=100_000) as nodes, \
            aiohttp.ClientSession() as http:
        one, two = nodes.nodes
        token = await nodes.technician("alice@example.com", "Alice")
        for _ in range(20):
            status, started = await _post(http, f"{one.base}/api/v1/sessions", token)
            assert status == 201
            results = await asyncio.gather(*(
                _post(http, f"{node.base}/api/v1/join", key=started["key"])
                for node in (one, two)))
            statuses = sorted(status for status, _ in results)
            assert statuses == [200, 409], results
            loser = next(body for status, body in results if status == 409)
            assert loser["error"] == "key_used"
            events = await _transcript(http, one.base, token, started["session_id"])
            assert [e["type"] for e in events] == ["created", "joined"]


SESSIONS = 6
LINES = 30


async def test_a_killed_node_loses_nothing(tmp_path: Path) -> None:
    """End users at node 2, technicians at node 1, chatting and dropping at random; node 2
    is killed with SIGKILL: its end users resume at node 1 and every view ends equal to
    the transcript."""
    async with cluster(tmp_path) as nodes, aiohttp.ClientSession() as http:
        one, two = nodes.nodes
        token = await nodes.technician("tech@example.com", "Tech")
        people = []
        rng = random.Random(11)
        for i in range(SESSIONS):
            session_id, participant = await _start_and_join(http, one, two, token,
                                                            f"User{i}")
            people.append((session_id, ChaosParticipant(
                http, one.base, session_id, token, "Tech", random.Random(rng.random()))))
            people.append((session_id, ChaosParticipant(
                http, [two.base, one.base], session_id, participant, f"User{i}",
                random.Random(rng.random()))))

        async def kill_node_two() -> None:
            await midway([person for _, person in people], LINES)
            two.kill()

        deadline = asyncio.get_running_loop().time() + 60
        async with asyncio.timeout(90):
            await asyncio.gather(kill_node_two(),
                                 *(person.run(LINES, deadline) for _, person in people))
        assert sum(p.tally.connect_failures for _, p in people) > 0  # node 2 did go down
        await _verify(http, one.base, token, people, "node killed")
        # Node 1 noticed node 2 was gone; the sessions live on (nobody ended them).
        for session_id, _ in people[::2]:
            async with http.get(f"{one.base}/api/v1/sessions/{session_id}",
                                headers={"Authorization": f"Bearer {token}"}) as response:
                assert (await response.json())["state"] in ("active", "reconnecting")


async def test_redis_restarting_mid_session_loses_no_message(tmp_path: Path) -> None:
    """Both sides stay connected (technician at node 1, end user at node 2) while Redis
    is stopped and started again: each still gets every event, in order, without
    reconnecting; what was published while Redis was away comes from the database."""
    redis = RedisServer(tmp_path / "redis")
    await redis.start()
    try:
        async with cluster(tmp_path, redis_url=redis.url) as nodes, \
                aiohttp.ClientSession() as http:
            one, two = nodes.nodes
            token = await nodes.technician("tech@example.com", "Tech")
            session_id, participant = await _start_and_join(http, one, two, token)
            technician = await Socket.open(http, one, session_id, token)
            user = await Socket.open(http, two, session_id, participant)

            async def talk(socket: Socket, name: str, count: int) -> None:
                for i in range(count):
                    await socket.say(f"{name} {i}", f"{name}-{i}")
                    await socket.wait(lambda f, i=i: f["type"] == "chat.ack"
                                      and f["id"] == f"{name}-{i}")
                    await asyncio.sleep(0.02)

            async def restart_redis() -> None:
                await asyncio.sleep(0.5)
                await redis.stop()
                async with http.get(f"{one.base}/readyz") as ready:
                    down = ready.status
                await asyncio.sleep(1.0)
                await redis.start()
                assert down == 503

            await asyncio.gather(talk(user, "user", 80), talk(technician, "tech", 80),
                                 restart_redis())
            last = max(e["seq"] for e in await _transcript(http, one.base, token, session_id))
            for socket in (technician, user):
                await socket.wait(lambda f: f["type"] == "event"
                                  and f["event"]["seq"] == last, seconds=20)
                assert sorted(socket.events) == list(range(1, last + 1))
                assert not socket.closed.is_set()  # no reconnect was needed
            async with http.get(f"{two.base}/readyz") as ready:
                assert ready.status == 200
            async with http.get(f"{two.base}/metrics") as metrics:
                text = await metrics.text()
            assert re.search(r"^broker_bus_reconnects_total [1-9]", text, re.MULTILINE), text
            await technician.close()
            await user.close()
    finally:
        await redis.stop()


async def test_a_cluster_node_restarted_gives_only_its_own_end_users_a_window(
        tmp_path: Path) -> None:
    """A node that starts does not put the sessions another live node serves into
    reconnecting (the start-up rule of one node would)."""
    async with cluster(tmp_path) as nodes, aiohttp.ClientSession() as http:
        one, two = nodes.nodes
        token = await nodes.technician("tech@example.com", "Tech")
        at_one, p_one = await _start_and_join(http, one, one, token)
        at_two, p_two = await _start_and_join(http, one, two, token)
        user_one = await Socket.open(http, one, at_one, p_one)
        user_two = await Socket.open(http, two, at_two, p_two)
        two.kill()
        await two.process.wait()  # type: ignore[union-attr]
        await two.start()  # same node name: it knows whose end users were its own
        status, session = await _get(http, f"{one.base}/api/v1/sessions/{at_two}", token)
        assert session["state"] == "reconnecting"
        status, session = await _get(http, f"{one.base}/api/v1/sessions/{at_one}", token)
        assert session["state"] == "active"
        assert not user_one.closed.is_set()
        assert [e["type"] for e in user_one.events.values()][-1] == "joined"
        await user_one.close()
        await user_two.close()


async def _rtc_peer(http: aiohttp.ClientSession, node: Node, session_id: str, token: str,
                    share_id: str, *, sharer: bool, offer_early: bool = False
                    ) -> tuple[AiortcPeer, str]:
    """An aiortc peer on a session socket at `node`, synced; and its sender name."""
    ws = await http.ws_connect(f"{node.base}/api/v1/sessions/{session_id}/ws")
    await ws.send_json({"type": "hello", "token": token, "after": 0})
    peer = AiortcPeer(ws, share_id, sharer=sharer, offer_early=offer_early)
    welcome = await peer.next("welcome")
    await peer.next("synced")
    return peer, str(welcome["you"]["sender"])


async def _until_pong(peer: AiortcPeer) -> list[dict[str, Any]]:
    """What reaches the peer until the answer to a ping: the broker has handled all that
    the peer sent before."""
    await peer.send("ping")
    frames = []
    for _ in range(1000):
        frame = await peer.next()
        if frame["type"] == "pong":
            return frames
        frames.append(frame)
    raise AssertionError(f"no pong among {frames[-5:]}")


async def _offered(peer: AiortcPeer) -> None:
    """Until the peer has sent its offer, and the broker has handled it."""
    async with asyncio.timeout(10):
        while peer.offers == 0:
            await asyncio.sleep(0.02)
    await _until_pong(peer)


async def test_a_screen_share_with_its_peers_on_two_nodes(tmp_path: Path) -> None:
    """The technician at node 1 asks for the screen of the end user's agent at node 2 and
    sees it: consent, start, an offer made before the technician was ready (held for it),
    answer and candidates across nodes, real video frames, pause and resume, remote
    control, and a stop sent by both at once, stored once. Then the technician shows their
    screen to the end user's page at node 2, offering before the page is ready."""
    async with cluster(tmp_path) as nodes, aiohttp.ClientSession() as http:
        one, two = nodes.nodes
        alice = await nodes.technician("alice@example.com", "Alice")
        session_id, participant = await _start_and_join(http, one, two, alice)
        status, link = await _post(
            http, f"{two.base}/api/v1/sessions/{session_id}/agent-link", participant)
        assert status == 201, link
        status, admitted = await _post(http, f"{two.base}/api/v1/agent/join",
                                       link=link["link"])
        assert status == 200, admitted
        # Every socket opens before the test enters its loopback-only network namespace
        # (the nodes, PostgreSQL and Redis are outside it; the peers' media inside).
        technician, tech_sender = await _rtc_peer(http, one, session_id, alice, "view",
                                                  sharer=False)
        agent, agent_sender = await _rtc_peer(http, two, session_id,
                                              admitted["participant_token"], "view",
                                              sharer=True, offer_early=True)
        page, page_sender = await _rtc_peer(http, two, session_id, participant, "show",
                                            sharer=False)
        await agent.send("agent.hello", version="0.1.0", platform="Linux")
        assert (await technician.next_event("agent.connected"))["author"]["sender"] == \
            agent_sender
        try:
            namespace = loopback_only()
            namespace.__enter__()
        except (NetnsUnavailable, PermissionError, OSError) as exc:
            must_run(f"cannot make a network namespace: {exc}")
        try:
            try:
                await _share_across_nodes(technician, agent, page, tech_sender,
                                          agent_sender, page_sender)
            finally:
                for peer in (technician, agent, page):
                    await peer.close()
        finally:
            namespace.__exit__(None, None, None)

        # Each change stored once, in the order it was made, whichever node made it.
        shares = [(e["type"], e["share_id"])
                  for e in await _transcript(http, one.base, alice, session_id)
                  if e["type"].startswith(("share.", "control."))]
        assert [kind for kind, share in shares if share == "view"] == [
            "share.requested", "share.consented", "share.started", "share.paused",
            "share.resumed", "control.requested", "control.granted", "control.stopped",
            "share.stopped"]
        assert [kind for kind, share in shares if share == "show"] == [
            "share.started", "share.stopped"]


async def _share_across_nodes(technician: AiortcPeer, agent: AiortcPeer, page: AiortcPeer,
                              tech_sender: str, agent_sender: str, page_sender: str) -> None:
    # The agent's share is asked for at node 1; the agent said hello at node 2.
    await technician.share("share.request", direction="end_user_to_technician",
                           source="agent")
    requested = await agent.next_event("share.requested")
    assert (requested["sharer"], requested["viewer"]) == (agent_sender, tech_sender)
    await agent.share("share.consent", accept=True)
    await technician.next_event("share.consented")
    await agent.share("share.start")
    await technician.next_event("share.started")

    # The agent offers at once; the technician is not ready yet: the offer waits.
    await agent.share("rtc.ready")
    await _offered(agent)
    await technician.share("rtc.ready")
    assert (await technician.next("rtc.config"))["id"] == "view"
    assert (await technician.next("rtc.offer"))["restart"] is False
    await asyncio.wait_for(technician.got_frame.wait(), 20)
    await technician.wait_frames(10)
    assert agent.offers == 1  # the waiting offer was the one: no rtc.peer_ready for another
    # End-of-candidates both ways (the offer and answer carry aiortc's candidates).
    await technician.share("rtc.candidate", candidate="", sdp_mid="0", sdp_mline_index=0)
    assert (await agent.next("rtc.candidate"))["candidate"] == ""
    await agent.share("rtc.candidate", candidate="", sdp_mid="0", sdp_mline_index=0)
    assert (await technician.next("rtc.candidate"))["sdp_mid"] == "0"

    # Pause at node 1, resume at node 1 after the agent stopped sending; frames again.
    await technician.share("share.pause")
    assert (await agent.next_event("share.paused"))["author"]["sender"] == tech_sender
    await agent.pause_media(True)
    await technician.share("share.resume")
    await agent.next_event("share.resumed")
    await agent.pause_media(False)
    await technician.wait_frames(10)

    # Remote control: asked for at node 1, granted at node 2.
    await technician.share("control.request")
    assert (await agent.next_event("control.requested"))["control"] == "requested"
    await agent.share("control.consent", accept=True)
    assert (await technician.next_event("control.granted"))["author"]["sender"] == \
        agent_sender

    # Both stop it at the same moment, on their own nodes: it is stopped once.
    await asyncio.gather(technician.share("share.stop"), agent.share("share.stop"))
    answers = [await _until_pong(technician), await _until_pong(agent)]
    refused = [f for frames in answers for f in frames if f["type"] == "error"]
    assert [(f["code"], f["ref"]) for f in refused] == [("share_ended", "view")], refused
    for peer, frames in zip((technician, agent), answers, strict=True):
        if not any(f["type"] == "event" and f["event"]["type"] == "share.stopped"
                   for f in frames):
            await peer.next_event("share.stopped")
    await technician.share("rtc.candidate", candidate="")
    assert (await technician.next("error"))["code"] == "share_ended"

    # The other way: the technician (node 1) shows their screen and offers before the end
    # user's page (node 2) is ready; the page gets the offer when it says rtc.ready.
    await technician.switch("show", sharer=True, offer_early=True)
    await technician.share("share.request", direction="technician_to_end_user")
    await technician.share("share.start")
    started = await page.next_event("share.started")
    while started["share_id"] != "show":  # the page saw the agent's share go by
        started = await page.next_event("share.started")
    assert (started["sharer"], started["viewer"]) == (tech_sender, page_sender)
    await technician.share("rtc.ready")
    await _offered(technician)
    await page.share("rtc.ready")
    assert (await page.next("rtc.config"))["id"] == "show"
    await page.next("rtc.offer")
    await asyncio.wait_for(page.got_frame.wait(), 20)
    await page.wait_frames(5)
    assert technician.offers == 1
    await page.share("share.stop")
    assert (await technician.next_event("share.stopped"))["author"]["sender"] == page_sender
