"""Customers' requests with two broker nodes (PostgreSQL and Redis): a team online at one
node is online at the other, and a pick-up at one node tells the customers at both their
new places."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from .cluster import Node, cluster
from .cluster_support import Socket, _dashboard, _post


async def _get(http: aiohttp.ClientSession, url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def _placed(socket: Socket, position: int) -> None:
    await socket.wait(lambda f: f["type"] == "queue.position" and f["position"] == position)


async def test_places_are_told_across_nodes(tmp_path: Path) -> None:
    async with cluster(tmp_path, availability_cache_seconds=0,
                       intake_queue_update_seconds=0.05) as nodes, \
            aiohttp.ClientSession() as http:
        one, two = nodes.nodes
        alice = await nodes.technician("alice@example.com", "Alice")
        await nodes.cli("team", "add", "Tier 1")
        await nodes.cli("team", "member", "--team", "Tier 1", "--email", "alice@example.com")
        alice_http, dashboard = await _dashboard(two, "alice@example.com")
        sockets: list[Socket] = []
        try:
            async with asyncio.timeout(10):  # her dashboard at node 2, seen by node 1
                while not (await _get(http, f"{one.base}/api/v1/availability"))["online"]:
                    await asyncio.sleep(0.1)
            answers = []
            for n in range(3):
                status, answer = await _post(http, f"{one.base}/api/v1/requests",
                                             name=f"Customer {n}", email="c@example.com",
                                             description="Nothing prints.")
                assert status == 201, answer
                answers.append(answer)
            at: list[Node] = [one, one, two]  # the third customer's page reached node 2
            for answer, node in zip(answers, at, strict=True):
                sockets.append(await Socket.open(http, node, answer["session_id"],
                                                 answer["participant_token"]))
            for position, socket in enumerate(sockets, start=1):
                await socket.ws.send_json({"type": "queue.ask"})
                await _placed(socket, position)
            queues = await _get(http, f"{two.base}/api/v1/queues", alice)
            first = queues["queues"][0]["waiting"][0]
            assert first["session_id"] == answers[0]["session_id"]
            status, taken = await _post(
                http, f"{two.base}/api/v1/handoffs/{first['handoff_id']}/accept", alice)
            assert status == 200, taken
            await sockets[0].event("handed_over", to="Alice", from_id=None)
            await _placed(sockets[1], 1)  # at node 1, told from node 2's pick-up
            await _placed(sockets[2], 2)
        finally:
            for socket in sockets:
                await socket.close()
            await dashboard.close()
            await alice_http.close()


async def test_the_form_limits_count_across_nodes(tmp_path: Path) -> None:
    """Two forms per address, then a wait: the third, sent to the other node, is refused
    (each node counting alone would have taken four)."""
    async with cluster(tmp_path, intake_address_burst=2, intake_address_per_hour=1) as nodes, \
            aiohttp.ClientSession() as http:
        one, two = nodes.nodes
        await nodes.cli("team", "add", "Tier 1")
        statuses = []
        for node in (one, two, two):
            status, answer = await _post(http, f"{node.base}/api/v1/requests",
                                         name="Flood", email="f@example.com",
                                         description="Again and again.")
            statuses.append((status, answer.get("error")))
        # Nobody of the team is online: each form is a message left (202).
        assert statuses == [(202, None), (202, None), (429, "rate_limited")]
