"""In Chromium: the technician sends the key by SMS and email from the dashboard; the
local Twilio-like server and a real SMTP server receive them, and the end user joins
from the link in the email."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .browser_support import (
    PASSWORD,
    People,
    add_technician,
    expect,
    live_broker,
    log_in,
    require_chromium,
    screenshot,
    start_session,
)
from .browser_support import people as people  # noqa: F401 - a fixture
from .delivery_support import twilio as twilio  # noqa: F401,PLC0414 - a fixture
from .fakes.smtp import SmtpServer, free_port
from .fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

pytestmark = pytest.mark.browser


async def test_send_sms_and_email_then_join_from_the_email(
        tmp_path: Path, twilio: FakeTwilio, people: People) -> None:
    require_chromium()
    smtp_port = free_port()
    async with live_broker(
            tmp_path / "data", sms_default_country="DE", twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN, twilio_from="+15005550006",
            twilio_api_base=twilio.url, smtp_host="127.0.0.1", smtp_port=smtp_port,
            smtp_tls="none", mail_from="help@example.com", delivery_poll_seconds=0.05,
    ) as live:
        await add_technician(live, "Alice Example")
        dash = await people.page()
        await log_in(dash, live, "alice@example.com")
        session_id, pane = await start_session(dash)
        deliveries = pane.locator('[data-role="deliveries"]')

        await pane.get_by_role("button", name="Send SMS").first.click()
        sms_form = pane.locator('[data-role="sms-form"]')
        await sms_form.get_by_label("Mobile number").fill("12")
        await sms_form.get_by_role("button", name="Send SMS").click()
        await expect(sms_form.locator('[data-role="form-error"]')).to_contain_text(
            "not a valid phone number")
        assert twilio.requests == 0
        await sms_form.get_by_label("Mobile number").fill("0151 23456789")
        await sms_form.get_by_label("Language").select_option("de")
        await sms_form.get_by_role("button", name="Send SMS").click()
        await expect(pane.locator('[data-role="sent-note"]')).to_contain_text("+4915123456789")
        await expect(deliveries).to_contain_text("SMS to +4915123456789 · Accepted by Twilio")
        (sms,) = twilio.messages
        assert "lädt Sie" in sms.body
        assert await twilio.callback(sms, "delivered") == 204
        await expect(deliveries).to_contain_text("SMS to +4915123456789 · Delivered")

        with SmtpServer(smtp_port) as smtp:
            await pane.get_by_role("button", name="Send email").first.click()
            email_form = pane.locator('[data-role="email-form"]')
            mailto = await email_form.get_by_role("link", name="Open in my mail program") \
                .get_attribute("href")
            assert mailto and mailto.startswith("mailto:?subject=")
            await email_form.get_by_label("Email address").fill("kim@example.com")
            await email_form.get_by_role("button", name="Send email").click()
            await expect(deliveries).to_contain_text("Email to kim@example.com · Sent")
        await screenshot(dash, "15-dashboard-deliveries")
        (mail,) = smtp.inbox.messages
        text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        link = re.search(r"http://127\.0\.0\.1:\d+/j/\S+", text)
        assert link

        user = await people.page()
        await user.goto(link.group(0))
        await expect(user.locator("#peer-name")).to_have_text("Alice Example")
        await expect(user.locator("#status")).to_have_text("Connected")
        await expect(pane.locator('[data-role="messages"]')).to_contain_text("Guest joined")
        await expect(pane.locator('[data-role="state"]')).to_contain_text("Connected with")
        people.assert_clean()


async def test_unconfigured_channels_say_what_to_set(tmp_path: Path, people: People) -> None:
    """A technician reads whom to ask; an admin, who runs the broker, the settings to add."""
    require_chromium()
    async with live_broker(tmp_path / "data") as live:
        await add_technician(live, "Alice Example")
        await live.broker.technicians.add("root@example.com", "Root Admin", PASSWORD,
                                          is_admin=True)
        dash = await people.page()
        await log_in(dash, live, "alice@example.com")
        admin = await people.page()  # before Alice's session: it would be in her list
        await log_in(admin, live, "root@example.com")
        _, pane = await start_session(dash)
        await pane.get_by_role("button", name="Send SMS").first.click()
        form = pane.locator('[data-role="sms-form"]')
        await expect(form.locator('[data-role="setup-note"]')).to_have_text(
            "SMS sending is not set up; ask your administrator.")
        await expect(form.get_by_role("button", name="Send SMS")).to_be_disabled()
        await pane.get_by_role("button", name="Send email").first.click()
        email = pane.locator('[data-role="email-form"]')
        await expect(email.locator('[data-role="setup-note"]')).to_have_text(
            "Email sending is not set up; ask your administrator.")
        mailto = email.get_by_role("link", name="Open in my mail program")
        assert (await mailto.get_attribute("href") or "").startswith("mailto:")
        await screenshot(dash, "16-dashboard-send-unconfigured")

        _, pane = await start_session(admin)
        await pane.get_by_role("button", name="Send SMS").first.click()
        await expect(pane.locator('[data-role="sms-form"] [data-role="setup-note"]')
                     ).to_contain_text("BROKER_TWILIO_ACCOUNT_SID")
        await pane.get_by_role("button", name="Send email").first.click()
        await expect(pane.locator('[data-role="email-form"] [data-role="setup-note"]')
                     ).to_contain_text("BROKER_SMTP_HOST")
        people.assert_clean()
