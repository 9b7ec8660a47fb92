"""Two broker processes on different ports sharing PostgreSQL and Redis, with no sticky
routing: a technician on one node and the end user on the other chat, see each other's
presence and hand over; a key redeemed at both at once is redeemed once; a node killed
with SIGKILL loses nothing (its end users resume on the other node); Redis restarting
mid-session loses no message. A screen share across nodes: test_cluster_rtc.py.
See tests/cluster.py for how the nodes are run."""

from __future__ import annotations

import asyncio
import random
import re
from pathlib import Path

import aiohttp

from .chaos import ChaosParticipant, midway
from .cluster import RedisServer, cluster
from .cluster_support import (
    Socket,
    _csrf,
    _dashboard,
    _get,
    _next_of,
    _post,
    _start_and_join,
)
from .test_chaos import _transcript, _verify


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

