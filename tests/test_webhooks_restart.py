"""Webhooks from real broker processes: one killed with SIGKILL between storing events and
sending them loses none (SQLite, or PostgreSQL with BROKER_TEST_DATABASE_URL: killed while
one request hangs in flight and further events are stored but not yet dispatched; started
again, it delivers every one), and two nodes sharing PostgreSQL and Redis send each event
once, in order per session."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from .cluster import TECH_PASSWORD, Cluster, Node, cluster, free_port
from .conftest import database_for_tests
from .webhook_support import HANG, Receiver


@contextlib.asynccontextmanager
async def one_node(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[Node, Cluster]]:
    async with database_for_tests() as database_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
        env.update(BROKER_DATA_DIR=str(tmp_path / "data"), BROKER_DATABASE_URL=database_url)
        env.update({f"BROKER_{k.upper()}": str(v) for k, v in settings.items()})
        port = free_port()
        node = Node("node1", port, {**env, "BROKER_PORT": str(port),
                                    "BROKER_NODE_NAME": "node1"}, tmp_path / "node.log")
        try:
            await node.start()
            yield node, Cluster([node], env)
        finally:
            await node.stop()


async def test_kill_9_between_storing_and_sending_loses_nothing(tmp_path: Path) -> None:
    receiver = await Receiver(default=HANG).start()
    # Events are dispatched once a second: those of the last moment before the kill are
    # in the journal only.
    async with one_node(tmp_path, webhook_allow_private_targets="true",
                        webhook_http_hosts="127.0.0.1", webhook_poll_seconds=1,
                        webhook_timeout_seconds=30) as (node, cluster), \
            aiohttp.ClientSession() as http:
        await cluster.cli("technician", "add", "--email", "root@example.com", "--name", "Root",
                          "--admin", stdin=TECH_PASSWORD + "\n")
        token = (await cluster.cli("token", "create", "--email", "root@example.com")).strip()
        auth = {"Authorization": f"Bearer {token}"}

        async def call(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
            async with http.request(method, node.base + path, headers=auth,
                                    **kwargs) as response:
                assert response.status < 300, await response.text()
                return dict(await response.json())

        made = await call("POST", "/api/v1/webhooks", json={
            "url": receiver.url, "events": ["session.created", "session.ended"]})
        receiver.secrets.append(made["secret"])
        first = await call("POST", "/api/v1/sessions")
        await receiver.wait_for(lambda got: len(got) == 1)  # in flight, unanswered
        others = [await call("POST", "/api/v1/sessions") for _ in range(3)]
        await call("POST", f"/api/v1/sessions/{first['session_id']}/end")
        node.kill()
        assert node.process is not None
        await node.process.wait()
        await receiver.stop()  # lets the hanging request go; a new server on the same port
        receiver = await Receiver().start(receiver.port)
        receiver.secrets.append(made["secret"])
        await node.start()
        await receiver.wait_for(lambda got: len(receiver.unique()) == 5, seconds=30)
    await receiver.stop()
    expected = {first["session_id"]: ["session.created", "session.ended"],
                **{other["session_id"]: ["session.created"] for other in others}}
    assert {session_id: receiver.first_order(session_id) for session_id in expected} \
        == expected
    assert not receiver.unverified



async def test_two_nodes_send_each_event_once_in_order(tmp_path: Path) -> None:
    """Both nodes dispatch and send (PostgreSQL and Redis); claims let one of them send
    each message, and one session's events, made on either node, keep their order."""
    receiver = await Receiver().start()
    try:
        async with cluster(tmp_path, count=2, webhook_allow_private_targets="true",
                           webhook_http_hosts="127.0.0.1", webhook_poll_seconds=0.2) as nodes, \
                aiohttp.ClientSession() as http:
            await nodes.cli("technician", "add", "--email", "root@example.com", "--name",
                            "Root", "--admin", stdin=TECH_PASSWORD + "\n")
            token = (await nodes.cli("token", "create", "--email", "root@example.com")).strip()
            auth = {"Authorization": f"Bearer {token}"}

            async def call(node: Node, path: str, **kwargs: Any) -> dict[str, Any]:
                async with http.post(node.base + path, headers=auth, **kwargs) as response:
                    assert response.status < 300, await response.text()
                    return dict(await response.json())

            first, second = nodes.nodes
            made = await call(first, "/api/v1/webhooks", json={
                "url": receiver.url, "events": ["session.created", "session.ended"]})
            receiver.secrets.append(made["secret"])
            started = [await call(node, "/api/v1/sessions")
                       for node in (first, second) * 5]
            for index, session in enumerate(started):  # ended on the other node
                node = nodes.nodes[(index + 1) % 2]
                await call(node, f"/api/v1/sessions/{session['session_id']}/end")
            await receiver.wait_for(lambda got: len(receiver.unique()) == 20, seconds=30)
    finally:
        await receiver.stop()
    assert len(receiver.arrivals) == 20  # none sent twice
    for session in started:
        assert receiver.first_order(session["session_id"]) == [
            "session.created", "session.ended"]
    assert not receiver.unverified
