"""The delivery queue: requests are stored first and sent by a worker, with retries.

A request is validated (number or address, language, rate limits) and stored as
`pending`; the worker claims due deliveries with a conditional UPDATE (so two workers
never send the same one), renders the message from the session's live key, and hands it
to the provider. Transient failures are retried with backoff; permanent ones are not.
An attempt that was under way when the broker stopped is marked `interrupted` at the
next start and not retried: a recipient never gets the same message twice because of a
restart. Every attempt and status change is recorded and published to the technician.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..audit import Action, AuditService
from ..bus import EventBus
from ..clock import Clock, nap
from ..errors import Conflict, DeliveryFailed, InvalidInput, KeyRejected, NotFound, RateLimited
from ..hashing import Sealer
from ..inputs import email_address, phone_number
from ..keys import KeyStore
from ..metrics import Metrics
from ..schema import deliveries, delivery_attempts, technicians
from ..sessions import ALL_SESSIONS_TOPIC, Session, SessionState, technician_topic
from ..settings import Settings
from ..technicians import Technician
from .model import PROGRESS, TWILIO_STATUS, Attempt, Channel, Delivery, DeliveryStatus
from .render import LANGUAGES, Invitation, email_message, sms_text
from .senders import TWILIO_PERMANENT, EmailSender, SmsSender

log = logging.getLogger(__name__)

STATUS_CALLBACK_PATH = "/api/v1/webhooks/twilio/status"
_SESSION_WINDOW = 600.0
_TECHNICIAN_WINDOW = 3600.0
_DUE = (DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value)


class DeliveryService:
    """Stores delivery requests and sends them from a background worker."""

    def __init__(self, settings: Settings, engine: AsyncEngine, keys: KeyStore, bus: EventBus,
                 clock: Clock, *, sms: SmsSender | None, email: EmailSender | None,
                 metrics: Metrics, node_id: str, audit: AuditService,
                 sealer: Sealer | None = None) -> None:
        self._settings = settings
        self._audit = audit
        self._metrics = metrics
        self._node_id = node_id
        self._engine = engine
        self._keys = keys
        self._bus = bus
        self._clock = clock
        self._sms = sms
        self._email = email
        self._wakeup = asyncio.Event()
        self._sealer = sealer

    async def close(self) -> None:
        for sender in (self._sms, self._email):
            if sender is not None:
                await sender.close()

    def configured(self, channel: Channel) -> bool:
        return (self._sms if channel is Channel.SMS else self._email) is not None

    def setup_hint(self, channel: Channel, *, admin: bool) -> str | None:
        """None if `channel` works; otherwise, for admins (who run the broker) the settings
        to add, and for other technicians whom to ask."""
        if self.configured(channel):
            return None
        return (_SETTINGS_MISSING if admin else _NOT_SET_UP)[channel]

    # -- requests ------------------------------------------------------------------------

    async def request(self, session: Session, technician: Technician, channel: str, to: str,
                      language: str | None) -> Delivery:
        try:
            kind = Channel(channel)
        except ValueError:
            raise InvalidInput("channel must be 'sms' or 'email'.", code="invalid_channel") \
                from None
        language = language or self._settings.default_language
        if language not in LANGUAGES:
            raise InvalidInput("language must be 'en' or 'de'.", code="invalid_language")
        hint = self.setup_hint(kind, admin=technician.is_admin)
        if hint is not None:
            raise Conflict(hint, code=f"{kind.value}_not_configured")
        if session.state is not SessionState.WAITING:
            raise Conflict("The end user has joined or the session has ended; "
                           "the key cannot be sent any more.", code="not_waiting")
        recipient = (phone_number(to, self._settings.sms_default_country)
                     if kind is Channel.SMS else email_address(to))
        now = self._clock.now()
        async with self._engine.begin() as conn:
            await self._keys.reveal(conn, session.id, now)  # refuses a key that is not live
            await self._check_limits(conn, session.id, technician.id, now)
            delivery_id = secrets.token_urlsafe(12)
            await conn.execute(deliveries.insert().values(
                id=delivery_id, session_id=session.id, technician_id=technician.id,
                channel=kind.value, recipient=recipient, language=language,
                status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=now,
                created_at=now, updated_at=now))
            await _record(conn, delivery_id, now, "requested",
                          f"{kind.value} to {recipient} in {language}")
        self._wakeup.set()
        delivery = await self._publish(delivery_id)
        await self._audit.record(Action.KEY_DELIVERED, session_id=session.id, details={
            "delivery_id": delivery_id, "channel": kind.value, "recipient": recipient,
            "language": language})
        return delivery

    async def notify(self, to: str, subject: str, text: str, *,
                     reply_to: str | None = None, html: str | None = None,
                     language: str | None = None, secret: bool = False) -> Delivery:
        """Queue a notice by email (not a key): sent, retried and recorded like the rest,
        but shown on no dashboard, as it belongs to no session. With `html`, the email
        has both parts; a `secret` one (a code) is stored sealed, as keys are."""
        if not self.configured(Channel.EMAIL):
            raise Conflict(_SETTINGS_MISSING[Channel.EMAIL], code="email_not_configured")
        now = self._clock.now()
        delivery_id = secrets.token_urlsafe(12)
        content = json.dumps({"subject": subject, "text": text, "reply_to": reply_to,
                              "html": html}, ensure_ascii=False)
        if secret:
            if self._sealer is None:
                raise ValueError("a secret notice needs the sealer")
            content = json.dumps({"sealed": self._sealer.seal(content, delivery_id)})
        async with self._engine.begin() as conn:
            await conn.execute(deliveries.insert().values(
                id=delivery_id, channel=Channel.EMAIL.value, recipient=email_address(to),
                language=language or self._settings.default_language, content=content,
                status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=now,
                created_at=now, updated_at=now))
            await _record(conn, delivery_id, now, "requested", f"notice to {to}")
        self._wakeup.set()
        return await self.get(delivery_id)

    async def _check_limits(self, conn: AsyncConnection, session_id: str,
                            technician_id: int, now: float) -> None:
        for column, value, window, limit in (
                (deliveries.c.session_id, session_id, _SESSION_WINDOW,
                 self._settings.delivery_session_limit),
                (deliveries.c.technician_id, technician_id, _TECHNICIAN_WINDOW,
                 self._settings.delivery_technician_limit)):
            times = (await conn.scalars(
                sa.select(deliveries.c.created_at).where(
                    column == value, deliveries.c.created_at > now - window)
                .order_by(deliveries.c.created_at))).all()
            if len(times) >= limit:
                raise RateLimited(times[len(times) - limit] + window - now,
                                  "Too many messages sent for now; wait before sending again.")

    async def for_session(self, session_id: str) -> list[Delivery]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(deliveries).where(
                deliveries.c.session_id == session_id).order_by(deliveries.c.created_at))).all()
            history = await _histories(conn, [row.id for row in rows])
        return [Delivery.from_row(row, history.get(row.id, ())) for row in rows]

    async def get(self, delivery_id: str) -> Delivery:
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                sa.select(deliveries).where(deliveries.c.id == delivery_id))).first()
            if row is None:
                raise NotFound("No such delivery.")
            history = await _histories(conn, [delivery_id])
        return Delivery.from_row(row, history.get(delivery_id, ()))

    # -- the worker ----------------------------------------------------------------------

    async def recover_interrupted(self, nodes: list[str] | None = None) -> int:
        """Attempts cut off by a stop are not repeated (no duplicate messages): at start
        every one (one node) or this node's own, and later those of `nodes` that were found
        dead (several nodes: the others' attempts may still be under way)."""
        query = sa.select(deliveries.c.id).where(
            deliveries.c.status == DeliveryStatus.SENDING.value)
        if self._settings.several_nodes:
            query = query.where(sa.or_(deliveries.c.claimed_by.in_([self._node_id, *(nodes or [])]),
                                       deliveries.c.claimed_by.is_(None)))
        async with self._engine.begin() as conn:
            ids = (await conn.scalars(query)).all()
            for delivery_id in ids:
                await self._set(conn, delivery_id, DeliveryStatus.INTERRUPTED,
                                error="The broker stopped while sending, so it is not known "
                                      "whether the message went out. Send it again if needed.")
        for delivery_id in ids:
            await self._publish(delivery_id)
        return len(ids)

    async def run_due(self) -> int:
        """Send every delivery that is due now; returns how many were attempted."""
        now = self._clock.now()
        async with self._engine.connect() as conn:
            due = (await conn.scalars(sa.select(deliveries.c.id).where(
                deliveries.c.status.in_(_DUE), deliveries.c.next_attempt_at <= now)
                .order_by(deliveries.c.next_attempt_at).limit(50))).all()
        attempted = 0
        for delivery_id in due:
            async with self._engine.begin() as conn:
                claimed = await conn.execute(deliveries.update().where(
                    deliveries.c.id == delivery_id, deliveries.c.status.in_(_DUE)).values(
                    status=DeliveryStatus.SENDING.value, attempts=deliveries.c.attempts + 1,
                    updated_at=now, claimed_by=self._node_id))
            if claimed.rowcount == 1:
                attempted += 1
                await self._attempt(delivery_id)
        return attempted

    def wake(self) -> None:
        """Look for due deliveries now instead of at the next poll."""
        self._wakeup.set()

    async def run_forever(self) -> None:
        await self.recover_interrupted()
        while True:
            try:
                await self.run_due()
            except Exception:
                log.exception("delivery worker failed; trying again")
            await nap(self._wakeup, self._settings.delivery_poll_seconds)
            self._wakeup.clear()

    async def _attempt(self, delivery_id: str) -> None:
        delivery = await self.get(delivery_id)
        now = self._clock.now()
        try:
            provider_id = await self._send(delivery, now)
        except KeyRejected as rejected:
            async with self._engine.begin() as conn:
                await self._set(conn, delivery_id, DeliveryStatus.CANCELLED,
                                error=f"Not sent: {rejected.message}")
                await _record(conn, delivery_id, now, "cancelled", rejected.message)
        except DeliveryFailed as failure:
            retry = failure.transient and delivery.attempts < self._settings.delivery_max_attempts
            async with self._engine.begin() as conn:
                if retry:
                    delay = self._settings.delivery_retry_base_seconds * 3 ** (
                        delivery.attempts - 1)
                    await self._set(conn, delivery_id, DeliveryStatus.RETRYING,
                                    error=failure.message, next_attempt_at=now + delay)
                    await _record(conn, delivery_id, now, "retry",
                                  f"attempt {delivery.attempts}: {failure.message}; "
                                  f"next attempt in {delay:.0f} s")
                else:
                    why = failure.message if not failure.transient else (
                        f"{failure.message}; gave up after {delivery.attempts} attempts")
                    await self._set(conn, delivery_id, DeliveryStatus.FAILED, error=why)
                    await _record(conn, delivery_id, now, "failed",
                                  f"attempt {delivery.attempts}: {why}")
        else:
            status = (DeliveryStatus.QUEUED if delivery.channel is Channel.SMS
                      and provider_id.startswith("SM") else DeliveryStatus.SENT)
            async with self._engine.begin() as conn:
                await self._set(conn, delivery_id, status, error=None, provider_id=provider_id)
                await _record(conn, delivery_id, now, "accepted",
                              f"attempt {delivery.attempts}: accepted as {provider_id}")
        await self._publish(delivery_id)

    async def _send(self, delivery: Delivery, now: float) -> str:
        if delivery.content is not None or delivery.session_id is None:
            return await self._send_notice(delivery)
        async with self._engine.connect() as conn:
            key = await self._keys.reveal(conn, delivery.session_id, now)
            technician = await conn.scalar(sa.select(technicians.c.display_name).where(
                technicians.c.id == delivery.technician_id))
        invitation = Invitation.for_key(key, technician=str(technician),
                                        product=self._settings.product_name,
                                        base_url=self._settings.base_url, now=now)
        if delivery.channel is Channel.SMS and self._sms is not None:
            callback = self._settings.base_url + STATUS_CALLBACK_PATH
            return await self._sms.send(
                delivery.recipient, sms_text(delivery.language, invitation), callback)
        if delivery.channel is Channel.EMAIL and self._email is not None:
            return await self._email.send(email_message(
                delivery.language, invitation, sender=self._settings.mail_from,
                recipient=delivery.recipient))
        raise DeliveryFailed(_NOT_SET_UP[delivery.channel], transient=False)

    async def _send_notice(self, delivery: Delivery) -> str:
        if self._email is None:
            raise DeliveryFailed(_SETTINGS_MISSING[Channel.EMAIL], transient=False)
        content = json.loads(delivery.content or "{}")
        if "sealed" in content and self._sealer is not None:
            content = json.loads(self._sealer.open(content["sealed"], delivery.id))
        sender = self._settings.mail_from
        message = EmailMessage()
        message["Subject"] = content["subject"]
        message["From"] = formataddr((self._settings.product_name, sender))
        message["To"] = delivery.recipient
        if content.get("reply_to"):
            message["Reply-To"] = content["reply_to"]
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
        message.set_content(content["text"])
        if content.get("html"):
            message.add_alternative(content["html"], subtype="html")
        # After the parts: making the message multipart moves Content-* headers into them.
        message["Content-Language"] = delivery.language
        return await self._email.send(message)

    # -- provider callbacks ----------------------------------------------------------------

    async def twilio_status(self, params: Mapping[str, str]) -> Delivery | None:
        """Apply a Twilio status callback (already signature-checked by the caller)."""
        sid, reported = params.get("MessageSid", ""), params.get("MessageStatus", "")
        status = TWILIO_STATUS.get(reported)
        if not sid or status is None:
            raise InvalidInput("A status callback needs MessageSid and a known MessageStatus.")
        now = self._clock.now()
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(deliveries).where(
                deliveries.c.provider_id == sid))).first()
            if row is None:
                log.info("status callback for unknown message %s", sid)
                return None
            current = DeliveryStatus(row.status)
            if PROGRESS.get(status, 0) < PROGRESS.get(current, 0):
                return None  # callbacks can arrive out of order; never go backwards
            error = None
            if status in (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED):
                code = params.get("ErrorCode", "")
                words = TWILIO_PERMANENT.get(int(code)) if code.isdigit() else None
                error = (f"{words} (Twilio {code})" if words else
                         f"the carrier reported {reported}" + (f" (Twilio {code})" if code
                                                                else ""))
            await self._set(conn, row.id, status, error=error)
            await _record(conn, row.id, now, reported, error or f"Twilio reports {reported}")
        return await self._publish(row.id)

    # -- shared ------------------------------------------------------------------------------

    async def _set(self, conn: AsyncConnection, delivery_id: str,
                   status: DeliveryStatus, **values: object) -> None:
        await conn.execute(deliveries.update().where(deliveries.c.id == delivery_id).values(
            status=status.value, updated_at=self._clock.now(), **values))

    async def _publish(self, delivery_id: str) -> Delivery:
        delivery = await self.get(delivery_id)
        if delivery.final:
            self._metrics.deliveries.labels(delivery.channel.value, delivery.status.value).inc()
        if delivery.technician_id is not None:  # a notice is on no technician's dashboard
            self._bus.publish(technician_topic(delivery.technician_id), delivery)
            self._bus.publish(ALL_SESSIONS_TOPIC, delivery)
        return delivery


_NOT_SET_UP = {
    Channel.SMS: "SMS sending is not set up; ask your administrator.",
    Channel.EMAIL: "Email sending is not set up; ask your administrator.",
}
_SETTINGS_MISSING = {
    Channel.SMS: "SMS is not set up: set BROKER_TWILIO_ACCOUNT_SID, BROKER_TWILIO_AUTH_TOKEN "
                 "and BROKER_TWILIO_FROM (or BROKER_SMS_BACKEND=console for development).",
    Channel.EMAIL: "Email is not set up: set BROKER_SMTP_HOST and BROKER_MAIL_FROM "
                   "(or BROKER_EMAIL_BACKEND=console for development).",
}


async def _record(conn: AsyncConnection, delivery_id: str, at: float,
                  outcome: str, detail: str) -> None:
    await conn.execute(delivery_attempts.insert().values(
        delivery_id=delivery_id, at=at, outcome=outcome, detail=detail))


async def _histories(conn: AsyncConnection,
                     delivery_ids: list[str]) -> dict[str, tuple[Attempt, ...]]:
    """The attempts of each of these deliveries, oldest first, in one query."""
    if not delivery_ids:
        return {}
    rows = (await conn.execute(sa.select(delivery_attempts).where(
        delivery_attempts.c.delivery_id.in_(delivery_ids)).order_by(delivery_attempts.c.id))
    ).all()
    found: dict[str, list[Attempt]] = {}
    for row in rows:
        found.setdefault(row.delivery_id, []).append(Attempt(row.at, row.outcome, row.detail))
    return {delivery_id: tuple(attempts) for delivery_id, attempts in found.items()}
