"""Key delivery by SMS (the real twilio library against a local Twilio-like server),
through the queue and its worker; limits, settings and who may send. Email:
test_delivery_email.py."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from broker.clock import FakeClock
from broker.settings import Settings
from web import create_app
from web.state import get_broker

from .conftest import PASSWORD, Tech, join, start_session
from .delivery_support import Factory, _send, _tech, _until
from .delivery_support import make_client as make_client  # noqa: F401,PLC0414 - a fixture
from .delivery_support import smtp_port as smtp_port  # noqa: F401,PLC0414 - a fixture
from .delivery_support import twilio as twilio  # noqa: F401,PLC0414 - a fixture
from .fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, INVALID_NUMBER, FakeTwilio


async def test_sms_is_normalised_sent_and_tracked(make_client: Factory,
                                                  twilio: FakeTwilio) -> None:
    client = await make_client()
    tech = await _tech(client)
    started = await start_session(client, tech)
    response = await _send(client, tech, started["session_id"], channel="sms",
                           to="0151 23456789", language="de")
    assert response.status == 202
    queued = await response.json()
    assert queued["to"] == "+4915123456789" and queued["status"] == "pending"
    done = await _until(client, tech, started["session_id"], queued["delivery_id"], "queued")
    (sms,) = twilio.messages
    assert sms.to == "+4915123456789" and sms.sender == "+15005550006"
    assert started["join_url"] in sms.body and started["key"] in sms.body
    assert "Alice Ärger" in sms.body and "lädt Sie" in sms.body and "60 Min." in sms.body
    assert sms.status_callback == f"{client.make_url('/api/v1/webhooks/twilio/status')}"
    assert [h["outcome"] for h in done["history"]] == ["requested", "accepted"]
    for status in ("sent", "delivered"):
        assert await twilio.callback(sms, status) == 204
    done = await _until(client, tech, started["session_id"], queued["delivery_id"],
                        "delivered")
    assert done["summary"] == "Delivered to the phone" and done["final"]
    assert await twilio.callback(sms, "sent") == 204  # late and out of order: ignored
    done = await _until(client, tech, started["session_id"], queued["delivery_id"],
                        "delivered")


async def test_bad_signature_is_refused_and_logged(make_client: Factory, twilio: FakeTwilio,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    client = await make_client()
    tech = await _tech(client)
    started = await start_session(client, tech)
    queued = await (await _send(client, tech, started["session_id"], channel="sms",
                                to="+12015550123")).json()
    await _until(client, tech, started["session_id"], queued["delivery_id"], "queued")
    (sms,) = twilio.messages
    with caplog.at_level(logging.WARNING):
        assert await twilio.callback(sms, "delivered", token="0" * 32) == 403
    assert "bad signature" in caplog.text
    unsigned = await client.post("/api/v1/webhooks/twilio/status",
                                 data={"MessageSid": sms.sid, "MessageStatus": "delivered"})
    assert unsigned.status == 403
    state = await _until(client, tech, started["session_id"], queued["delivery_id"], "queued")
    assert state["status"] == "queued"


async def test_invalid_numbers_are_refused_before_sending(make_client: Factory,
                                                          twilio: FakeTwilio) -> None:
    client = await make_client()
    tech = await _tech(client)
    started = await start_session(client, tech)
    for bad in ("12345", "not a number", "", "+44 7700 900123"):
        response = await _send(client, tech, started["session_id"], channel="sms", to=bad)
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_phone"
    assert twilio.requests == 0


@pytest.mark.parametrize("code, words", [(21211, "not valid"), (21610, "unsubscribed")])
async def test_permanent_twilio_errors_are_not_retried(make_client: Factory,
                                                       twilio: FakeTwilio, clock: FakeClock,
                                                       code: int, words: str) -> None:
    client = await make_client()
    tech = await _tech(client)
    started = await start_session(client, tech)
    twilio.fail_next(code)
    queued = await (await _send(client, tech, started["session_id"], channel="sms",
                                to="+12015550123")).json()
    failed = await _until(client, tech, started["session_id"], queued["delivery_id"], "failed")
    assert words in failed["summary"] and str(code) in failed["summary"]
    clock.advance(3600)
    get_broker(client.app).deliveries.wake()
    await asyncio.sleep(0.2)
    assert twilio.requests == 1 and failed["attempts"] == 1


async def test_twilio_invalid_to_from_the_provider(make_client: Factory,
                                                   twilio: FakeTwilio) -> None:
    client = await make_client(sms_default_country="US")
    tech = await _tech(client)
    started = await start_session(client, tech)
    queued = await (await _send(client, tech, started["session_id"], channel="sms",
                                to=INVALID_NUMBER)).json()
    failed = await _until(client, tech, started["session_id"], queued["delivery_id"], "failed")
    assert "21211" in failed["error"]


async def test_wrong_credentials_fail_without_retry(make_client: Factory,
                                                    twilio: FakeTwilio) -> None:
    client = await make_client(twilio_auth_token="e" * 32)
    tech = await _tech(client)
    started = await start_session(client, tech)
    queued = await (await _send(client, tech, started["session_id"], channel="sms",
                                to="+12015550123")).json()
    failed = await _until(client, tech, started["session_id"], queued["delivery_id"], "failed")
    assert "credentials were refused" in failed["error"]


async def test_transient_errors_are_retried_with_backoff(make_client: Factory,
                                                         twilio: FakeTwilio,
                                                         clock: FakeClock) -> None:
    client = await make_client()
    broker = get_broker(client.app)
    tech = await _tech(client)
    started = await start_session(client, tech)
    twilio.fail_next(20429, 20500)
    queued = await (await _send(client, tech, started["session_id"], channel="sms",
                                to="+12015550123")).json()
    retrying = await _until(client, tech, started["session_id"], queued["delivery_id"],
                            "retrying")
    assert "HTTP 429" in retrying["error"] and retrying["next_attempt_at"]
    clock.advance(9)
    broker.deliveries.wake()
    await asyncio.sleep(0.2)
    assert twilio.requests == 1  # not due yet
    clock.advance(1)
    broker.deliveries.wake()
    async with asyncio.timeout(5):
        while twilio.requests < 2:
            await asyncio.sleep(0.02)
    retrying = await _until(client, tech, started["session_id"], queued["delivery_id"],
                            "retrying")
    assert "HTTP 500" in retrying["error"]
    clock.advance(30)
    broker.deliveries.wake()
    done = await _until(client, tech, started["session_id"], queued["delivery_id"], "queued")
    assert done["attempts"] == 3 and len(twilio.messages) == 1
    assert [h["outcome"] for h in done["history"]] == ["requested", "retry", "retry",
                                                        "accepted"]


async def test_gives_up_after_max_attempts(make_client: Factory, twilio: FakeTwilio,
                                           clock: FakeClock) -> None:
    client = await make_client(delivery_max_attempts=2)
    broker = get_broker(client.app)
    tech = await _tech(client)
    started = await start_session(client, tech)
    twilio.fail_next(20500, 20500, 20500)
    queued = await (await _send(client, tech, started["session_id"], channel="sms",
                                to="+12015550123")).json()
    await _until(client, tech, started["session_id"], queued["delivery_id"], "retrying")
    clock.advance(10)
    broker.deliveries.wake()
    failed = await _until(client, tech, started["session_id"], queued["delivery_id"], "failed")
    assert "gave up after 2 attempts" in failed["error"]
    assert twilio.requests == 2


async def test_key_used_before_sending_cancels(make_client: Factory, twilio: FakeTwilio,
                                               clock: FakeClock) -> None:
    client = await make_client()
    tech = await _tech(client)
    started = await start_session(client, tech)
    twilio.fail_next(20500)
    queued = await (await _send(client, tech, started["session_id"], channel="sms",
                                to="+12015550123")).json()
    await _until(client, tech, started["session_id"], queued["delivery_id"], "retrying")
    await join(client, started["key"])
    clock.advance(10)
    get_broker(client.app).deliveries.wake()
    cancelled = await _until(client, tech, started["session_id"], queued["delivery_id"],
                             "cancelled")
    assert "already been used" in cancelled["summary"]
    assert not twilio.messages
    response = await _send(client, tech, started["session_id"], channel="sms",
                           to="+12015550123")
    assert response.status == 409 and (await response.json())["error"] == "not_waiting"




async def test_sending_is_rate_limited(make_client: Factory, twilio: FakeTwilio) -> None:
    client = await make_client(delivery_session_limit=2, delivery_technician_limit=3)
    tech = await _tech(client)
    first = await start_session(client, tech)
    for _ in range(2):
        assert (await _send(client, tech, first["session_id"], channel="sms",
                            to="+12015550123")).status == 202
    limited = await _send(client, tech, first["session_id"], channel="sms", to="+12015550123")
    assert limited.status == 429 and int(limited.headers["Retry-After"]) > 0
    second = await start_session(client, tech)
    assert (await _send(client, tech, second["session_id"], channel="email",
                        to="a@example.com")).status == 202
    limited = await _send(client, tech, second["session_id"], channel="email",
                          to="b@example.com")
    assert limited.status == 429  # the technician's hourly allowance is used up


async def test_unconfigured_channels_say_what_to_set(aiohttp_client: Any, tmp_path: Path,
                                                     clock: FakeClock) -> None:
    """Admins, who run the broker, read the settings to add; other technicians whom to ask."""
    client = await aiohttp_client(create_app(Settings(data_dir=tmp_path / "d"), clock=clock))
    tech = await _tech(client)
    started = await start_session(client, tech)
    sms = await _send(client, tech, started["session_id"], channel="sms", to="+12015550123")
    assert sms.status == 409
    body = await sms.json()
    assert body == {"error": "sms_not_configured",
                    "message": "SMS sending is not set up; ask your administrator."}
    email = await _send(client, tech, started["session_id"], channel="email", to="a@example.com")
    assert await email.json() == {"error": "email_not_configured",
                                  "message": "Email sending is not set up; ask your administrator."}

    broker = get_broker(client.app)
    boss = await broker.technicians.add("boss@example.com", "Boss", PASSWORD, is_admin=True)
    admin = Tech(boss, await broker.technicians.create_token(boss.id))
    started = await start_session(client, admin)
    sms = await _send(client, admin, started["session_id"], channel="sms", to="+12015550123")
    body = await sms.json()
    assert body["error"] == "sms_not_configured" and "BROKER_TWILIO_ACCOUNT_SID" in body["message"]
    email = await _send(client, admin, started["session_id"], channel="email", to="a@example.com")
    body = await email.json()
    assert body["error"] == "email_not_configured" and "BROKER_SMTP_HOST" in body["message"]
    webhook = await client.post("/api/v1/webhooks/twilio/status", data={"MessageSid": "SMx"})
    assert webhook.status == 404


async def test_console_backend_logs_the_message(aiohttp_client: Any, tmp_path: Path,
                                                clock: FakeClock,
                                                caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=tmp_path / "d", sms_backend="console", email_backend="console",
                        delivery_poll_seconds=0.05)
    client = await aiohttp_client(create_app(settings, clock=clock))
    tech = await _tech(client)
    started = await start_session(client, tech)
    with caplog.at_level(logging.INFO, logger="broker.delivery.senders"):
        for channel, to in (("sms", "+12015550123"), ("email", "a@example.com")):
            queued = await (await _send(client, tech, started["session_id"], channel=channel,
                                        to=to)).json()
            await _until(client, tech, started["session_id"], queued["delivery_id"], "sent")
    assert caplog.text.count(started["key"]) == 2


async def test_bad_requests(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    started = await start_session(client, tech)
    for body, code in (({"channel": "fax", "to": "1"}, "invalid_channel"),
                       ({"channel": "sms"}, "invalid_input"),
                       ({"channel": "email", "to": "not-an-address"}, "invalid_email"),
                       ({"channel": "email", "to": "a@example.com", "language": "fr"},
                        "invalid_language")):
        response = await _send(client, tech, started["session_id"], **body)
        assert response.status == 400, body
        assert (await response.json())["error"] == code


async def test_only_the_owner_sends_or_reads(make_client: Factory) -> None:
    client = await make_client()
    owner = await _tech(client)
    other = await _tech(client, "mallory@example.com")
    started = await start_session(client, owner)
    url = f"/api/v1/sessions/{started['session_id']}/deliveries"
    for headers in (other.auth, {}):
        assert (await client.post(url, headers=headers, json={
            "channel": "sms", "to": "+12015550123"})).status in (401, 403)
        assert (await client.get(url, headers=headers)).status in (401, 403)


async def test_revoked_key_cannot_be_sent(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    started = await start_session(client, tech)
    await client.post(f"/api/v1/sessions/{started['session_id']}/revoke", headers=tech.auth)
    response = await _send(client, tech, started["session_id"], channel="sms",
                           to="+12015550123")
    assert response.status == 409


async def test_sealed_key_is_erased_when_used(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    started = await start_session(client, tech)
    await join(client, started["key"])
    async with get_broker(client.app).engine.connect() as conn:
        sealed = await conn.scalar(sa.text("select sealed from support_keys"))
    assert sealed is None


@pytest.mark.parametrize("partial", [
    {"twilio_account_sid": ACCOUNT_SID},
    {"twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": AUTH_TOKEN},
    {"smtp_host": "127.0.0.1"},
])
def test_half_configured_channels_count_as_not_set_up(tmp_path: Path,
                                                      partial: dict[str, str]) -> None:
    settings = Settings(data_dir=tmp_path / "d", **partial)  # type: ignore[arg-type]
    assert (settings.sms_mode, settings.email_mode) == ("off", "off")
