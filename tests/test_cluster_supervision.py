"""Supervision across two broker nodes (PostgreSQL and Redis, tests/cluster.py): an admin
watches on one node while the technician and the end user are on the other; both are
told, and told again when they reconnect there; the admin takes the session over
through the other node and the end user is connected with them."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from .cluster import TECH_PASSWORD, cluster
from .cluster_support import Socket, _csrf, _log_in, _post, _start_and_join


async def test_a_watch_and_a_take_over_across_nodes(tmp_path: Path) -> None:
    async with cluster(tmp_path, supervision_tell_end_user="true") as nodes, \
            aiohttp.ClientSession() as http:
        one, two = nodes.nodes
        alice = await nodes.technician("alice@example.com", "Alice")
        await nodes.cli("technician", "add", "--email", "root@example.com", "--name", "Root",
                        "--admin", stdin=TECH_PASSWORD + "\n")
        root = (await nodes.cli("token", "create", "--email", "root@example.com")).strip()
        session_id, participant = await _start_and_join(http, one, one, alice)
        technician = await Socket.open(http, one, session_id, alice)
        user = await Socket.open(http, one, session_id, participant)

        watcher = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        try:
            status, _ = await _log_in(watcher, two, "root@example.com", TECH_PASSWORD)
            assert status == 303
            ws = await watcher.ws_connect(f"{two.base}/api/v1/sessions/{session_id}/watch",
                                          headers={"Origin": two.base})
            await technician.wait(lambda f: f["type"] == "supervisor.watching"
                                  and f["watching"] and f["supervisor"]["name"] == "Root")
            await user.wait(lambda f: f == {"type": "supervision.notice", "watching": True})
            # Reconnected at node one: node two says again who watches.
            await technician.close()
            await user.close()
            technician = await Socket.open(http, one, session_id, alice)
            user = await Socket.open(http, one, session_id, participant)
            await technician.wait(lambda f: f["type"] == "supervisor.watching"
                                  and f["watching"])
            await user.wait(lambda f: f == {"type": "supervision.notice", "watching": True})
            # Taken over at node two; the end user at node one talks to Root now.
            async with watcher.post(
                    f"{two.base}/api/v1/sessions/{session_id}/supervision/take-over",
                    json={"note": "Escalated to me"},
                    headers={"Origin": two.base, "X-CSRF-Token": await _csrf(watcher, two)}
            ) as taken:
                assert taken.status == 200, await taken.text()
            await user.event("handed_over", to="Root", reason="taken_over")
            await technician.event("handed_over", to="Root")
            await ws.close()
            await user.wait(lambda f: f == {"type": "supervision.notice", "watching": False})
        finally:
            await watcher.close()
        # Root owns it now, through either node.
        status, ended = await _post(http, f"{one.base}/api/v1/sessions/{session_id}/end", root)
        assert status == 200, ended
        await technician.close()
        await user.close()
