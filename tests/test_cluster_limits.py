"""Two broker processes sharing PostgreSQL, Redis and the data directory (tests/cluster.py):
the guessing limits of docs/security.md hold for the cluster, not per node (key guesses,
wrong passwords and wrong second-factor codes spread over both nodes are limited as if
they went to one), and a tus upload cut at one node is resumed at the other with
identical bytes, while the technician at the first node sees its progress and its
offer."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from pathlib import Path

import aiohttp
import pyotp
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from yarl import URL

from .cluster import TECH_PASSWORD, Node, cluster
from .cluster_support import Socket, _log_in, _post, _start_and_join
from .transfer_support import CuttingProxy, _tus_upload

WRONG_KEY = "111111111"  # well formed; one in 10⁹ that it is the live key
MiB = 1024 * 1024


async def _join(http: aiohttp.ClientSession, node: Node, key: str,
                address: str) -> tuple[int, str | None]:
    """A typed key sent from `address` (through the proxy); the status and Retry-After."""
    async with http.post(f"{node.base}/api/v1/join", json={"key": key},
                         headers={"X-Forwarded-For": address}) as response:
        await response.read()
        return response.status, response.headers.get("Retry-After")


async def _login(node: Node, email: str, password: str,
                 address: str) -> tuple[int, str | None]:
    """The login form at `node`, filled in from `address`; the status and Retry-After."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        return await _log_in(browser, node, email, password, {"X-Forwarded-For": address})


async def test_guessing_limits_hold_across_nodes(tmp_path: Path) -> None:
    async with cluster(tmp_path, trust_forwarded_for=True, redeem_free_failures=3,
                       redeem_base_delay_seconds=1, redeem_max_delay_seconds=60,
                       redeem_global_failures_per_minute=8,
                       login_failures_per_minute=2, factor_free_failures=2) as nodes, \
            aiohttp.ClientSession() as http:
        one, two = nodes.nodes
        token = await nodes.technician("alice@example.com", "Alice")
        status, started = await _post(http, f"{one.base}/api/v1/sessions", token)
        assert status == 201, started

        # Keys: three free failures and the one that locks, two at each node; per node
        # that would be two failures each, far from any lockout.
        for node in (one, two, one, two):
            assert await _join(http, node, WRONG_KEY, "10.0.0.1") == (404, None)
        status, retry_after = await _join(http, one, WRONG_KEY, "10.0.0.1")
        assert status == 429 and retry_after is not None
        # Locked at the other node too, even for the right key; other addresses are not.
        assert (await _join(http, two, started["key"], "10.0.0.1"))[0] == 429
        assert await _join(http, two, WRONG_KEY, "10.0.0.2") == (404, None)
        await asyncio.sleep(int(retry_after))
        assert (await _join(http, two, started["key"], "10.0.0.1"))[0] == 200

        # The global limit (8 typed-code failures a minute, from all addresses together)
        # trips within 9 failures spread over both nodes (one node alone would allow 8).
        statuses = []
        for i in range(9):
            status, retry_after = await _join(http, (one, two)[i % 2], WRONG_KEY, f"10.1.0.{i}")
            statuses.append(status)
            if status == 429:
                break
        assert statuses[-1] == 429 and retry_after is not None, statuses
        assert set(statuses[:-1]) == {404}, statuses
        for node in (one, two):
            status, retry_after = await _join(http, node, WRONG_KEY, "10.2.0.1")
            assert status == 429 and retry_after is not None

        # Logins: two free failures and the one that locks, spread over both nodes.
        statuses = []
        for node in (one, two, one, two):
            status, retry_after = await _login(node, "alice@example.com", "wrong password",
                                               "10.3.0.1")
            statuses.append(status)
        assert statuses == [401, 401, 401, 429]
        assert retry_after is not None
        assert (await _login(one, "alice@example.com", TECH_PASSWORD, "10.3.0.1"))[0] == 429
        await asyncio.sleep(int(retry_after))
        assert (await _login(one, "alice@example.com", TECH_PASSWORD, "10.3.0.1"))[0] == 303

        # Second-factor codes: two free failures and the one that locks, over both nodes
        # (the pending sign-in's cookie is good at either: they share the cookie secret).
        await nodes.technician("bob@example.com", "Bob")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as bob:
            secret = await _enrol_totp(bob, one)
            await _form(bob, one, "/logout", {}, page="/dashboard")
            await _log_in(bob, one, "bob@example.com", TECH_PASSWORD)
            statuses = [(await _form(bob, node, "/login/factor", {"code": "000000"},
                                     page="/login/factor"))[0] for node in (one, two, one)]
            assert statuses == [401, 401, 401]
            # The code of the next step: the enrolment used this one.
            code = pyotp.TOTP(secret).at(time.time() + 30)
            status, retry_after = await _form(bob, two, "/login/factor", {"code": code},
                                              page="/login/factor")
            assert status == 429 and retry_after is not None
            await asyncio.sleep(int(retry_after))
            assert (await _form(bob, two, "/login/factor", {"code": code},
                                page="/login/factor"))[0] == 303


async def _form(http: aiohttp.ClientSession, node: Node, path: str, data: dict[str, str], *,
                page: str) -> tuple[int, str | None]:
    """A form posted at `node` with the CSRF token of `page` there; status, Retry-After."""
    async with http.get(f"{node.base}{page}") as shown:
        csrf = re.search(r'name="_csrf" value="([^"]+)"', await shown.text())
    assert csrf, page
    async with http.post(f"{node.base}{path}", data={**data, "_csrf": csrf.group(1)},
                         allow_redirects=False) as response:
        await response.read()
        return response.status, response.headers.get("Retry-After")


async def _enrol_totp(http: aiohttp.ClientSession, node: Node) -> str:
    """Log Bob in at `node` and set up an authenticator app; its secret."""
    assert (await _log_in(http, node, "bob@example.com", TECH_PASSWORD))[0] == 303
    assert (await _form(http, node, "/account/totp/new", {},
                        page="/account/security"))[0] == 303
    async with http.get(f"{node.base}/account/totp") as shown:
        found = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', await shown.text())
    assert found
    secret = found.group(1).replace(" ", "")
    status, _ = await _form(http, node, "/account/totp", {"code": pyotp.TOTP(secret).now()},
                            page="/account/totp")
    assert status == 200
    return secret


async def test_an_upload_cut_at_one_node_resumes_at_the_other(tmp_path: Path) -> None:
    """Cut at node 1, resumed and cut again at node 2, finished at node 1 (which still
    holds what it had received itself): the same bytes and SHA-256, and the technician at
    node 1 sees node 2's progress and the offer."""
    async with cluster(tmp_path) as nodes, aiohttp.ClientSession() as http:
        one, two = nodes.nodes
        token = await nodes.technician("alice@example.com", "Alice")
        session_id, participant = await _start_and_join(http, one, one, token)
        technician = await Socket.open(http, one, session_id, token)
        files = f"/api/v1/sessions/{session_id}/files/"
        tus = {"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {participant}"}
        data = os.urandom(7 * MiB + 333)

        async def offset(node: Node, path: str) -> int:
            # A HEAD also waits for a request the node is still receiving (nothing stops
            # one that another node is receiving, so the client asks where it was cut).
            async with http.head(f"{node.base}{path}", headers=tus) as head:
                assert head.status == 200
                return int(head.headers["Upload-Offset"])

        # The end user's upload starts at node 1; the network fails after 2 MiB.
        async with CuttingProxy(one.port, limit=2 * MiB) as proxy:
            await asyncio.to_thread(_expect_cut, f"http://127.0.0.1:{proxy.port}{files}",
                                    participant, data)
        async with http.get(f"{two.base}{files}", headers=tus) as listed:
            (upload,) = (await listed.json())["files"]
        path = upload["url"]
        first = await offset(one, path)
        assert 0 < first < 2 * MiB
        # Node 2 resumes from what node 1 left in the shared directory; cut again.
        assert await offset(two, path) == first
        async with CuttingProxy(two.port, limit=2 * MiB) as proxy:
            await asyncio.to_thread(_expect_cut, f"http://127.0.0.1:{proxy.port}{files}",
                                    participant, data, f"http://127.0.0.1:{proxy.port}{path}")
        second = await offset(two, path)
        assert first < second < len(data)
        # Back at node 1, which must not resume from what it held in memory.
        assert await offset(one, path) == second
        await technician.wait(lambda f: f["type"] == "file.progress"
                              and f["received"] == second)  # node 2's, at node 1
        resumed = await asyncio.to_thread(_tus_upload, f"{one.base}{files}", participant, data,
                                          "big.bin", url=f"{one.base}{path}")
        assert URL(resumed).path == path

        sha256 = hashlib.sha256(data).hexdigest()
        offered = await technician.event("file.offered", upload_id=upload["upload_id"])
        assert offered["sha256"] == sha256 and offered["size"] == len(data)
        for node in (one, two):
            async with http.get(f"{node.base}{path}",
                                headers={"Authorization": f"Bearer {token}"}) as download:
                assert download.status == 200
                body = await download.read()
            assert hashlib.sha256(body).hexdigest() == sha256 and body == data
        await technician.close()


def _expect_cut(endpoint: str, token: str, data: bytes, url: str | None = None) -> None:
    """tuspy's upload (from the start, or resumed at `url`), which the network cuts."""
    try:
        _tus_upload(endpoint, token, data, "big.bin", url=url)
    except (TusCommunicationError, TusUploadFailed):
        return
    raise AssertionError("the upload was not cut")
