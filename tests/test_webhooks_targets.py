"""Server-side request forgery: webhooks refuse loopback, private and link-local targets,
whether written as addresses (in any notation) or as names that resolve to them, checked
when each request is sent (DNS rebinding), and connect only to the checked address.

Every test that could send anything runs in a network namespace with only loopback
(tests/netns.py), with a receiver listening there on the port the refused URLs name: a
bug in the checks would show as a request arriving, and could reach nothing else."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from broker.errors import InvalidInput
from broker.settings import Settings
from broker.webhooks.targets import TargetPolicy
from broker.webhooks.transport import HttpTransport

from .conftest import Tech, start_session
from .rtc_support import netns as netns  # noqa: F401,PLC0414 - a fixture
from .test_webhooks import admin as admin  # noqa: F401,PLC0414 - a fixture
from .test_webhooks import settled
from .webhook_support import Receiver

NOT_CANONICAL = ["127.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "017700000001",
                 "0x7f000001", "127.0.0.1.", "1.2.3.4.5"]
PRIVATE = ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "0.0.0.0", "[::]",  # noqa: S104
           "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "[fe80::1]",
           "[fc00::1]", "100.64.0.1", "[2002:7f00:1::]", "224.0.0.1"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=float(int(time.time())))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # The defaults: no private targets; http only to localhost (refused by address).
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    webhook_http_hosts="localhost", webhook_poll_seconds=0.05)


@pytest.fixture
async def receiver(netns: None) -> AsyncIterator[Receiver]:
    found = await Receiver().start()
    yield found
    await found.stop()


def test_registration_refuses_what_is_not_https_or_not_public() -> None:
    policy = TargetPolicy(frozenset({"desk.example"}))
    assert policy.check_url("https://help.example.com/hooks?x=1")
    assert policy.check_url("http://desk.example:8080/in")
    assert policy.check_url("https://localhost/in")  # a name: checked when sending
    for url, code in [("http://help.example.com/", "http_not_allowed"),
                      ("ftp://help.example.com/", "invalid_url"),
                      ("https://user:pw@help.example.com/", "invalid_url"),
                      ("https://help.example.com/#x", "invalid_url"),
                      ("https:///nohost", "invalid_url"), ("https://h:99999/", "invalid_url"),
                      ("https://help.example.com/a b", "invalid_url"),
                      ("https://" + "a" * 2000 + ".example/", "invalid_url"),
                      *((f"https://{host}/", "target_not_allowed")
                        for host in PRIVATE + NOT_CANONICAL)]:
        with pytest.raises(InvalidInput) as refused:
            policy.check_url(url)
        assert refused.value.code == code, url
    allowing = TargetPolicy(frozenset(), allow_private=True)
    assert allowing.check_url("https://127.0.0.1/") and allowing.check_url("https://[::1]/")
    with pytest.raises(InvalidInput):
        allowing.check_url("https://127.1/")  # never canonical, whatever the setting


async def test_no_address_form_reaches_a_loopback_receiver(receiver: Receiver) -> None:
    names = {"metadata.test": ["169.254.169.254"], "intranet.test": ["10.1.2.3"],
             "mixed.test": ["8.8.8.8", "192.168.1.1"], "loop.test": ["127.0.0.1"],
             "v6loop.test": ["::1"], "mapped.test": ["::ffff:127.0.0.1"]}

    async def lookup(host: str, port: int) -> list[str]:
        if host in names:
            return names[host]
        from broker.webhooks.transport import system_lookup
        return await system_lookup(host, port)

    hosts = [*names, "localhost", *PRIVATE, *NOT_CANONICAL]
    transport = HttpTransport(TargetPolicy(frozenset(h.strip("[]") for h in hosts)),
                              timeout=2, per_host=1, lookup=lookup)
    try:
        for host in hosts:
            reply = await transport.post(f"http://{host}:{receiver.port}/hook", {}, b"{}")
            assert reply.status is None and reply.error is not None, host
            assert "refused" in reply.error, (host, reply.error)
    finally:
        await transport.close()
    assert receiver.arrivals == []


async def test_names_are_checked_at_each_send_and_the_checked_address_is_used(
        receiver: Receiver) -> None:
    answers = [["8.8.8.8"], ["127.0.0.1"]]  # public when first asked, loopback later

    async def rebinding(host: str, port: int) -> list[str]:
        return answers.pop(0) if host == "rebind.test" else ["127.0.0.1"]

    strict = HttpTransport(TargetPolicy(frozenset({"rebind.test"})), timeout=2, per_host=1,
                           lookup=rebinding)
    try:
        first = await strict.post(f"http://rebind.test:{receiver.port}/hook", {}, b"{}")
        assert first.error is not None and "refused" not in first.error  # tried: no route
        second = await strict.post(f"http://rebind.test:{receiver.port}/hook", {}, b"{}")
        assert second.error is not None and "127.0.0.1, a loopback address: refused" \
            in second.error
    finally:
        await strict.close()
    assert receiver.arrivals == []
    # Allowed, a name no real resolver knows reaches the receiver at the address checked.
    allowing = HttpTransport(TargetPolicy(frozenset({"desk.test"}), allow_private=True),
                             timeout=2, per_host=1, lookup=rebinding)
    try:
        reply = await allowing.post(f"http://desk.test:{receiver.port}/hook", {}, b"{}")
    finally:
        await allowing.close()
    assert reply.ok
    assert receiver.arrivals[0].headers["host"] == f"desk.test:{receiver.port}"


async def test_the_broker_refuses_a_name_that_resolves_to_loopback_when_sending(
        receiver: Receiver, client: TestClient, admin: Tech, tech: Tech) -> None:
    refused = await client.post("/api/v1/webhooks", headers=admin.auth, json={
        "url": f"https://127.0.0.1:{receiver.port}/hook", "events": ["session.created"]})
    assert refused.status == 400
    assert (await refused.json())["error"] == "target_not_allowed"
    made = await client.post("/api/v1/webhooks", headers=admin.auth, json={
        "url": f"http://localhost:{receiver.port}/hook", "events": ["session.created"]})
    assert made.status == 201, await made.text()
    await start_session(client, tech)
    entry = await settled(client, admin, (await made.json())["id"], 1)
    assert entry["status"] == "retrying" and entry["response_status"] is None
    assert "a loopback address: refused" in entry["error"]
    assert receiver.arrivals == []
