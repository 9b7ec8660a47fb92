"""Two broker processes sharing PostgreSQL and Redis (tests/cluster.py): a credential ended
at one node closes the sockets it opened at the other (web/signouts.py)."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import aiohttp

from .cluster import TECH_PASSWORD, Node, cluster
from .cluster_support import _log_in, _post

CLOSE_WAIT = 15.0  # a bound, not a figure: the close normally comes within milliseconds


async def _closed_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
    async with asyncio.timeout(CLOSE_WAIT):
        while True:
            message = await ws.receive()
            if message.type == aiohttp.WSMsgType.CLOSE:
                return int(message.data), str(message.extra)
            assert message.type == aiohttp.WSMsgType.TEXT, message


async def _session_socket(http: aiohttp.ClientSession, node: Node, session_id: str,
                          token: str | None) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(f"{node.base}/api/v1/sessions/{session_id}/ws")
    await ws.send_json({"type": "hello", "token": token})
    async with asyncio.timeout(CLOSE_WAIT):
        while (await ws.receive_json())["type"] != "synced":
            pass
    return ws


async def test_a_login_ended_at_one_node_closes_its_sockets_at_the_other(
        tmp_path: Path) -> None:
    async with cluster(tmp_path) as nodes:
        one, two = nodes.nodes
        alice = await nodes.technician("alice@example.com", "Alice")
        await nodes.cli("technician", "add", "--email", "root@example.com", "--name", "Root",
                        "--admin", stdin=TECH_PASSWORD + "\n")
        root = (await nodes.cli("token", "create", "--email", "root@example.com")).strip()
        # Alice's browser, logged in at node two; its cookie works at both nodes.
        browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        api = aiohttp.ClientSession()
        try:
            assert (await _log_in(browser, two, "alice@example.com", TECH_PASSWORD))[0] == 303
            status, started = await _post(api, f"{one.base}/api/v1/sessions", alice)
            assert status == 201, started
            dashboard = await browser.ws_connect(f"{two.base}/api/v1/technician/ws")
            pane = await _session_socket(browser, two, started["session_id"], None)
            # (A technician has one socket per session: the newest replaces the others.)
            status, other = await _post(api, f"{one.base}/api/v1/sessions", alice)
            assert status == 201, other
            by_token = await _session_socket(api, two, other["session_id"], alice)

            # She logs out at node one (the proxy sent that request there).
            async with browser.get(f"{one.base}/dashboard") as page:
                csrf = re.search(r'data-csrf="([^"]+)"', await page.text())
            assert csrf
            begun = time.monotonic()
            async with browser.post(f"{one.base}/logout", data={"_csrf": csrf.group(1)},
                                    allow_redirects=False) as response:
                assert response.status == 303
            for ws in (dashboard, pane):
                assert await _closed_with(ws) == (4401, "logout")
            print(f"closed at the other node {1000 * (time.monotonic() - begun):.0f} ms "
                  "after the logout")

            # An admin disables her at node one: her API token's socket at two closes.
            async with api.get(f"{one.base}/api/v1/technicians",
                               headers={"Authorization": f"Bearer {root}"}) as response:
                listed = await response.json()
            alice_id = next(t["id"] for t in listed["technicians"]
                            if t["email"] == "alice@example.com")
            async with api.patch(f"{one.base}/api/v1/technicians/{alice_id}",
                                 json={"disabled": True},
                                 headers={"Authorization": f"Bearer {root}"}) as response:
                assert response.status == 200, await response.text()
            assert await _closed_with(by_token) == (4401, "technician_disabled")
        finally:
            await browser.close()
            await api.close()
