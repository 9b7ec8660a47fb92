"""Nobody online: availability says so, the customer leaves a message, the team gets it by
email (a real SMTP server), and a technician answers it with a session whose key goes to
the customer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broker.clock import FakeClock
from web import create_app

from .fakes.smtp import SmtpServer, free_port
from .intake_support import (
    Factory,
    broker_of,
    intake_settings,
    json_of,
    submit,
    team_of,
    tech_of,
)

MAIL = {"smtp_host": "127.0.0.1", "smtp_tls": "none", "mail_from": "help@example.com",
        "product_name": "Acme Help", "delivery_poll_seconds": 0.05, "smtp_timeout_seconds": 5}


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    with SmtpServer(free_port()) as server:
        yield server


@pytest.fixture
def make_client(aiohttp_client: Any, tmp_path: Path, clock: FakeClock, database_url: str,
                smtp: SmtpServer) -> Factory:
    async def make(**overrides: Any) -> TestClient:
        settings = intake_settings(tmp_path, database_url, **MAIL, smtp_port=smtp.port,
                                   **overrides)
        return await aiohttp_client(create_app(settings, clock=clock))  # type: ignore[no-any-return]

    return make


async def mail(smtp: SmtpServer, count: int) -> list[EmailMessage]:
    """The inbox once it holds `count` messages (10 s at most)."""
    async with asyncio.timeout(10):
        while len(smtp.inbox.messages) < count:
            await asyncio.sleep(0.02)
    return smtp.inbox.messages


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def test_a_message_is_emailed_and_answered_with_a_session(
        make_client: Factory, smtp: SmtpServer) -> None:
    client = await make_client()
    alice, bob = await tech_of(client, "Alice"), await tech_of(client, "Bob")
    root = await tech_of(client, "Root", admin=True)
    team_id = await team_of(client, "Tier 1", alice, bob, online=False)
    team = await json_of(await client.put(f"/api/v1/teams/{team_id}/message-email",
                                          headers=root.auth, json={"email": "Desk@Example.com"}),
                         200)
    assert team["message_email"] == "Desk@example.com"
    # A body without "email" is refused, not taken for null (tests/test_fuzz_api.py).
    for body in [{}, {"mail": "desk@example.com"}]:
        refused = await client.put(f"/api/v1/teams/{team_id}/message-email",
                                   headers=root.auth, json=body)
        assert (await json_of(refused, 400))["error"] == "invalid_input"
    available = await client.get("/api/v1/availability?team=tier-1")
    assert await json_of(available, 200) == {"online": False, "estimated_wait_seconds": None}
    assert available.headers["Cache-Control"] == "public, max-age=5"
    left = await submit(client, 202, severity="bugfix", phone="+49 30 1234567")
    assert left["status"] == "unanswered" and left["online"] is False
    (notice,) = await mail(smtp, 1)
    assert smtp.inbox.recipients == [["Desk@example.com"]]
    assert notice["Subject"] == "[Acme Help] Message from Carla Kunde (bugfix) for Tier 1"
    assert notice["Reply-To"] == "carla@example.com"
    assert notice["From"] == "Acme Help <help@example.com>"
    body = text_of(notice)
    assert "The printer prints nothing since this morning." in body
    assert "+49301234567" in body and left["request_id"] in body
    listed = await json_of(await client.get("/api/v1/requests?kind=message",
                                            headers=alice.auth), 200)
    (message,) = listed["requests"]
    assert (message["request_id"], message["status"]) == (left["request_id"], "unanswered")
    # Alice and Bob answer at once: one session, one key for the customer.
    url = f"/api/v1/requests/{left['request_id']}/session"
    first, second = await asyncio.gather(client.post(url, headers=alice.auth, json={}),
                                         client.post(url, headers=bob.auth, json={}))
    assert sorted([first.status, second.status]) == [201, 409]
    winner = first if first.status == 201 else second
    loser = second if winner is first else first
    assert (await loser.json())["error"] == "already_answered"
    started = await winner.json()
    assert started["delivery"]["to"] == "carla@example.com"
    assert started["delivery"]["channel"] == "email"
    (_, invitation) = await mail(smtp, 2)
    assert smtp.inbox.recipients[1] == ["carla@example.com"]
    assert started["join_url"] in text_of(invitation)
    joined = await json_of(await client.post("/api/v1/join", json={
        "token": started["join_url"].rsplit("/", 1)[-1]}), 200)
    assert joined["session_id"] == started["session_id"]
    answered = await json_of(await client.get(f"/api/v1/requests/{left['request_id']}",
                                              headers=root.auth), 200)
    assert answered["status"] == "answered"
    assert answered["answer_session_id"] == started["session_id"]
    assert answered["answered_by"] in (alice.technician.id, bob.technician.id)


async def test_leaving_a_message_needs_an_address(make_client: Factory,
                                                  smtp: SmtpServer) -> None:
    client = await make_client()
    await team_of(client, "Tier 1", await tech_of(client, "Alice"), online=False)
    refused = await client.post("/api/v1/requests", json={
        "name": "Carla", "description": "Help", "email": ""})
    assert refused.status == 400
    assert (await refused.json())["field"] == "email"  # required in the form, too
    root = await tech_of(client, "Root", admin=True)
    form = {"fields": [{"name": "email", "required": False}]}
    await json_of(await client.put("/api/v1/intake-form", headers=root.auth, json=form), 200)
    refused = await client.post("/api/v1/requests", json={"name": "Carla",
                                                           "description": "Help"})
    body = await refused.json()
    assert (refused.status, body["field"], body["error"]) == (400, "email", "field_required")
    # Without a team address the message waits in the list; nothing is emailed.
    await submit(client, 202)
    assert smtp.inbox.messages == []


async def test_availability_is_cached_for_a_few_seconds(make_client: Factory,
                                                        clock: FakeClock) -> None:
    client = await make_client()
    alice = await tech_of(client, "Alice")
    await team_of(client, "Tier 1", alice, online=False)
    url = "/api/v1/availability?team=Tier%201"
    assert (await json_of(await client.get(url), 200))["online"] is False
    await broker_of(client).roster.dashboard_opened(alice.technician.id)
    assert (await json_of(await client.get(url), 200))["online"] is False  # cached
    clock.advance(5)
    assert await json_of(await client.get(url), 200) == {"online": True,
                                                          "estimated_wait_seconds": None}
    assert (await client.get("/api/v1/availability?team=nobody")).status == 400


async def test_an_unanswered_message_breaches_its_target(make_client: Factory,
                                                         clock: FakeClock) -> None:
    client = await make_client()
    alice = await tech_of(client, "Alice")
    await team_of(client, "Tier 1", alice, online=False)
    left = await submit(client, 202, severity="critical")
    sweep = broker_of(client).intake.sweep
    clock.advance(48 * 60)
    await sweep()
    due = await json_of(await client.get(f"/api/v1/requests/{left['request_id']}",
                                         headers=alice.auth), 200)
    assert due["alerted_at"] is not None and due["breached_at"] is None
    clock.advance(12 * 60)
    await sweep()
    missed = await json_of(await client.get(f"/api/v1/requests/{left['request_id']}",
                                            headers=alice.auth), 200)
    assert missed["breached_at"] == "2027-01-15T09:00:00+00:00"
    assert missed["remaining_seconds"] == 0
