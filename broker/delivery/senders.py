"""The providers behind the queue: Twilio for SMS, SMTP for email, and console stand-ins.

Each sender raises DeliveryFailed(transient=...) and nothing else, so the queue decides
about retries without knowing a provider's exceptions.
"""

from __future__ import annotations

import logging
import ssl
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from ..errors import DeliveryFailed
from ..settings import Settings

log = logging.getLogger(__name__)

# Twilio error codes that retrying cannot fix, in words a technician understands.
TWILIO_PERMANENT = {
    21211: "the phone number is not valid",
    21214: "the phone number cannot be reached",
    21408: "SMS to this country is not enabled for the account",
    21606: "the sender number cannot send SMS",
    21610: "the recipient has unsubscribed (replied STOP)",
    21612: "this number cannot be reached from the sender number",
    21614: "the number is not a mobile number",
    20003: "the Twilio credentials were refused",
}


class SmsSender(Protocol):
    async def send(self, to: str, body: str, status_callback: str | None) -> str:
        """Hand the SMS over; returns the provider's message id."""
        ...

    async def close(self) -> None: ...


class EmailSender(Protocol):
    async def send(self, message: EmailMessage) -> str:
        """Hand the email over; returns its Message-ID."""
        ...

    async def close(self) -> None: ...


class ConsoleSms:
    """Development stand-in: the SMS goes to the log."""

    async def send(self, to: str, body: str, status_callback: str | None) -> str:
        log.info("SMS to %s: %s", to, body)
        return "console"

    async def close(self) -> None:
        pass


class ConsoleEmail:
    """Development stand-in: the email goes to the log."""

    async def send(self, message: EmailMessage) -> str:
        log.info("Email to %s: %s\n%s", message["To"], message["Subject"],
                 message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
        return str(message["Message-ID"])

    async def close(self) -> None:
        pass


class TwilioSms:
    """SMS through Twilio's Messages API with the twilio library's aiohttp transport."""

    def __init__(self, settings: Settings) -> None:
        from twilio.http.async_http_client import AsyncTwilioHttpClient
        from twilio.rest import Client

        self._http = AsyncTwilioHttpClient(timeout=30)
        if settings.twilio_api_key_sid:
            username, password = settings.twilio_api_key_sid, settings.twilio_api_key_secret
        else:
            username, password = settings.twilio_account_sid, settings.twilio_auth_token
        self._client = Client(username, password, account_sid=settings.twilio_account_sid,
                              http_client=self._http)
        # Lets a proxy (or a test server) stand in for api.twilio.com.
        self._client.api.base_url = settings.twilio_api_base.rstrip("/")
        self._sender = settings.twilio_from

    async def send(self, to: str, body: str, status_callback: str | None) -> str:
        # twilio's async transport is aiohttp; its connection errors surface as such.
        from aiohttp import ClientError
        from twilio.base.exceptions import TwilioRestException
        from twilio.base.values import unset

        sender = ({"messaging_service_sid": self._sender} if self._sender.startswith("MG")
                  else {"from_": self._sender})
        try:
            message = await self._client.messages.create_async(
                to=to, body=body, status_callback=status_callback or unset, **sender)
        except TwilioRestException as exc:
            words = TWILIO_PERMANENT.get(exc.code or 0)
            if words is not None:
                raise DeliveryFailed(f"{words} (Twilio {exc.code})", transient=False) from exc
            if exc.status == 429 or exc.status >= 500:
                raise DeliveryFailed(f"Twilio is busy or failing (HTTP {exc.status})",
                                     transient=True) from exc
            detail = f"Twilio {exc.code}" if exc.code else f"HTTP {exc.status}"
            raise DeliveryFailed(f"Twilio refused the message ({detail}: {exc.msg})",
                                 transient=False) from exc
        except (ClientError, TimeoutError, OSError) as exc:
            raise DeliveryFailed(f"Twilio could not be reached ({exc.__class__.__name__})",
                                 transient=True) from exc
        return str(message.sid)

    async def close(self) -> None:
        await self._http.close()


class SmtpEmail:
    """Email through an SMTP server (plain, STARTTLS or implicit TLS; optional login)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._tls_context = (ssl.create_default_context(cafile=settings.smtp_ca_file)
                             if settings.smtp_ca_file else None)

    async def send(self, message: EmailMessage) -> str:
        s = self._settings
        try:
            await aiosmtplib.send(
                message, hostname=s.smtp_host, port=s.smtp_port,
                username=s.smtp_username or None, password=s.smtp_password or None,
                use_tls=s.smtp_tls == "tls", start_tls=s.smtp_tls == "starttls",
                tls_context=self._tls_context, timeout=s.smtp_timeout_seconds)
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise DeliveryFailed(f"the mail server refused the login ({exc.code})",
                                 transient=False) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed("the mail server refused the address", transient=False) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"the mail server answered {exc.code} {exc.message}",
                                 transient=400 <= exc.code < 500) from exc
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"the mail server could not be reached ({exc})",
                                 transient=True) from exc
        return str(message["Message-ID"])

    async def close(self) -> None:
        pass


def build_senders(settings: Settings) -> tuple[SmsSender | None, EmailSender | None]:
    """The senders the settings ask for; None where a channel is off."""
    sms: SmsSender | None = None
    if settings.sms_mode == "twilio":
        sms = TwilioSms(settings)
    elif settings.sms_mode == "console":
        sms = ConsoleSms()
    email: EmailSender | None = None
    if settings.email_mode == "smtp":
        email = SmtpEmail(settings)
    elif settings.email_mode == "console":
        email = ConsoleEmail()
    return sms, email
