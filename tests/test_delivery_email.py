"""Key delivery by email (aiosmtplib against a real aiosmtpd server), through the queue
and its worker."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from broker.clock import FakeClock
from broker.schema import deliveries
from web.state import get_broker

from .conftest import PASSWORD, Tech, start_session
from .delivery_support import Factory, _send, _tech, _until
from .delivery_support import make_client as make_client  # noqa: F401,PLC0414 - a fixture
from .delivery_support import smtp_port as smtp_port  # noqa: F401,PLC0414 - a fixture
from .delivery_support import twilio as twilio  # noqa: F401,PLC0414 - a fixture
from .fakes.smtp import PASSWORD as SMTP_PASSWORD
from .fakes.smtp import USER as SMTP_USER
from .fakes.smtp import SmtpServer, make_certificate


def _plain(message: EmailMessage) -> str:
    return str(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]


def _html(message: EmailMessage) -> str:
    return str(message.get_body(("html",)).get_content())  # type: ignore[union-attr]


async def test_email_both_parts_in_german(make_client: Factory, smtp_port: int) -> None:
    client = await make_client()
    tech = await _tech(client)
    started = await start_session(client, tech)
    with SmtpServer(smtp_port) as smtp:
        response = await _send(client, tech, started["session_id"], channel="email",
                               to="Kunde.Müller@Example.COM", language="de")
        assert response.status == 202
        queued = await response.json()
        assert queued["to"] == "Kunde.Müller@example.com"
        await _until(client, tech, started["session_id"], queued["delivery_id"], "sent")
    (message,) = smtp.inbox.messages
    assert smtp.inbox.recipients == [["Kunde.Müller@example.com"]]
    assert message["Subject"] == "Ihre Support-Sitzung mit Alice Ärger"
    assert message["From"] == "Acme Help <help@example.com>"
    assert message["Message-ID"].endswith("@example.com>")
    for body in (_plain(message), _html(message)):
        assert started["join_url"] in body and started["key"] in body
        assert "lädt Sie zu einer Support-Sitzung ein" in body
    assert "<strong>Alice Ärger</strong>" in _html(message)


async def test_email_in_english_escapes_names(make_client: Factory, smtp_port: int) -> None:
    client = await make_client()
    broker = get_broker(client.app)
    technician = await broker.technicians.add("eve@example.com", "<b>Eve</b>", PASSWORD)
    tech = Tech(technician, await broker.technicians.create_token(technician.id))
    started = await start_session(client, tech)
    with SmtpServer(smtp_port) as smtp:
        queued = await (await _send(client, tech, started["session_id"], channel="email",
                                    to="user@example.com", language="en")).json()
        await _until(client, tech, started["session_id"], queued["delivery_id"], "sent")
    (message,) = smtp.inbox.messages
    assert message["Subject"] == "Your support session with <b>Eve</b>"
    assert "&lt;b&gt;Eve&lt;/b&gt;" in _html(message) and "<b>Eve</b>" not in _html(message)


async def test_email_starttls_with_login(make_client: Factory, smtp_port: int,
                                         tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    client = await make_client(smtp_tls="starttls", smtp_ca_file=str(cert),
                               smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD)
    tech = await _tech(client)
    started = await start_session(client, tech)
    with SmtpServer(smtp_port, tls_files=(cert, key), require_auth=True) as smtp:
        queued = await (await _send(client, tech, started["session_id"], channel="email",
                                    to="user@example.com")).json()
        await _until(client, tech, started["session_id"], queued["delivery_id"], "sent")
    assert len(smtp.inbox.messages) == 1


async def test_email_wrong_password_fails_permanently(make_client: Factory, smtp_port: int,
                                                      tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    client = await make_client(smtp_tls="starttls", smtp_ca_file=str(cert),
                               smtp_username=SMTP_USER, smtp_password="wrong")
    tech = await _tech(client)
    started = await start_session(client, tech)
    with SmtpServer(smtp_port, tls_files=(cert, key), require_auth=True) as smtp:
        queued = await (await _send(client, tech, started["session_id"], channel="email",
                                    to="user@example.com")).json()
        failed = await _until(client, tech, started["session_id"], queued["delivery_id"],
                              "failed")
    assert "refused the login" in failed["error"] and not smtp.inbox.messages


async def test_untrusted_certificate_is_not_accepted(make_client: Factory, smtp_port: int,
                                                     tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    client = await make_client(smtp_tls="starttls")  # the system CAs do not know this cert
    tech = await _tech(client)
    started = await start_session(client, tech)
    with SmtpServer(smtp_port, tls_files=(cert, key)) as smtp:
        queued = await (await _send(client, tech, started["session_id"], channel="email",
                                    to="user@example.com")).json()
        retrying = await _until(client, tech, started["session_id"], queued["delivery_id"],
                                "retrying")
    assert retrying["error"] and not smtp.inbox.messages


async def test_server_down_then_up_delivers_once(make_client: Factory, smtp_port: int,
                                                 clock: FakeClock) -> None:
    client = await make_client()
    broker = get_broker(client.app)
    tech = await _tech(client)
    started = await start_session(client, tech)
    queued = await (await _send(client, tech, started["session_id"], channel="email",
                                to="user@example.com")).json()
    retrying = await _until(client, tech, started["session_id"], queued["delivery_id"],
                            "retrying")
    assert "could not be reached" in retrying["error"]
    with SmtpServer(smtp_port) as smtp:
        clock.advance(10)
        broker.deliveries.wake()
        done = await _until(client, tech, started["session_id"], queued["delivery_id"], "sent")
        broker.deliveries.wake()
        await asyncio.sleep(0.2)
    assert len(smtp.inbox.messages) == 1 and done["attempts"] == 2


async def test_queued_delivery_survives_restart_and_is_sent_once(
        make_client: Factory, smtp_port: int, clock: FakeClock, aiohttp_client: Any) -> None:
    client = await make_client()
    tech = await _tech(client)
    started = await start_session(client, tech)
    queued = await (await _send(client, tech, started["session_id"], channel="email",
                                to="user@example.com")).json()
    await _until(client, tech, started["session_id"], queued["delivery_id"], "retrying")
    # Pretend a second delivery was mid-attempt when the broker died.
    second = await (await _send(client, tech, started["session_id"], channel="email",
                                to="other@example.com")).json()
    await _until(client, tech, started["session_id"], second["delivery_id"], "retrying")
    async with get_broker(client.app).engine.begin() as conn:
        await conn.execute(deliveries.update().where(
            deliveries.c.id == second["delivery_id"]).values(status="sending"))
    await client.close()
    with SmtpServer(smtp_port) as smtp:
        clock.advance(10)
        restarted = await make_client()
        first = await _until(restarted, tech, started["session_id"], queued["delivery_id"],
                             "sent")
        interrupted = await _until(restarted, tech, started["session_id"],
                                   second["delivery_id"], "interrupted")
        await asyncio.sleep(0.2)
    assert [m["To"] for m in smtp.inbox.messages] == ["user@example.com"]
    assert first["attempts"] == 2
    assert "not known whether" in interrupted["error"]

