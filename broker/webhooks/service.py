"""Webhooks: what admins manage, and the node's loop that dispatches and sends.

Every node runs one loop (`start`): the dispatcher turns newly stored events into
messages, and one worker task per enabled endpoint sends that endpoint's messages, at
most `webhook_concurrency` at once, each the next of its session. A slow or failing
endpoint holds up only its own worker; the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncEngine

from ..audit import Action, AuditService
from ..bus import EventBus
from ..clock import Clock, nap
from ..errors import Conflict, NotFound
from ..hashing import Sealer
from ..protocol.session import WebhookDisabled
from ..sessions import ALL_SESSIONS_TOPIC
from ..settings import Settings
from . import signing
from .endpoints import EndpointStore
from .feed import Dispatcher
from .model import Endpoint, EventType, Message
from .outbox import Claimed, Outbox
from .targets import TargetPolicy
from .transport import HttpTransport, Reply

log = logging.getLogger(__name__)
_PRUNE_EVERY = 3600.0  # seconds between clean-ups of the delivery log


class WebhookService:
    """Registers endpoints and delivers their events (docs/webhooks.md)."""

    def __init__(self, settings: Settings, engine: AsyncEngine, sealer: Sealer,
                 bus: EventBus, clock: Clock, audit: AuditService) -> None:
        self._audit = audit
        policy = TargetPolicy(settings.webhook_http_host_set,
                              settings.webhook_allow_private_targets)
        self._settings = settings
        self.endpoints = EndpointStore(engine, sealer, clock, policy,
                                       rotation_grace=settings.webhook_rotation_grace_seconds)
        self.outbox = Outbox(engine, clock, settings.node_id,
                             timeout=settings.webhook_timeout_seconds,
                             disable_after=settings.webhook_disable_after_seconds)
        self._bus = bus
        self._clock = clock
        self._transport = HttpTransport(policy, timeout=settings.webhook_timeout_seconds,
                                        per_host=settings.webhook_concurrency)
        self._dispatcher = Dispatcher(engine, clock, self.endpoints, self.wake)
        self._wakeup = asyncio.Event()
        self._workers: dict[str, _Worker] = {}
        self._loop: asyncio.Task[None] | None = None
        self._pruned_at = 0.0
        self._unsubscribe: Callable[[], None] | None = None

    # -- what admins do -------------------------------------------------------------------

    async def add(self, url: str, event_types: tuple[EventType, ...], description: Any,
                  created_by: int | None) -> tuple[Endpoint, str]:
        made = await self.endpoints.add(url, event_types, description, created_by)
        await self._audit.record(Action.WEBHOOK_ADDED, details=_audited(made[0]))
        self.wake()
        return made

    async def change(self, endpoint_id: str, **changes: Any) -> Endpoint:
        endpoint = await self.endpoints.change(endpoint_id, **changes)
        await self._audit.record(Action.WEBHOOK_CHANGED, details=_audited(endpoint))
        self.wake()
        return endpoint

    async def remove(self, endpoint_id: str) -> None:
        endpoint = await self.endpoints.get(endpoint_id)
        await self.endpoints.remove(endpoint_id)
        await self._audit.record(Action.WEBHOOK_REMOVED, details=_audited(endpoint))
        self.wake()

    async def rotate(self, endpoint_id: str) -> tuple[Endpoint, str]:
        """A new signing secret (the old one still signs for a grace period)."""
        endpoint, new = await self.endpoints.rotate(endpoint_id)
        await self._audit.record(Action.WEBHOOK_ROTATED, details=_audited(endpoint))
        return endpoint, new

    async def send_test(self, endpoint_id: str) -> Message:
        endpoint = await self.endpoints.get(endpoint_id)
        if not endpoint.enabled:
            raise Conflict("Enable the webhook before sending it a test event.",
                           code="webhook_disabled")
        message = await self.outbox.add_test(endpoint.id)
        self.wake()
        return message

    # -- the loop ---------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for new events, endpoints and due messages now instead of at the next poll."""
        self._wakeup.set()
        for worker in self._workers.values():
            worker.wakeup.set()

    async def start(self) -> None:
        # This node's attempts that a stop cut off go out again (one node: every one).
        await self.outbox.release_interrupted(
            [self._settings.node_id] if self._settings.several_nodes else None)
        self._loop = asyncio.create_task(self._run(), name="webhooks")
        # A session or key delivery changed (on any node): its events are stored, so look
        # now rather than at the next poll, if an endpoint may want them. Other events
        # wait for the poll.
        self._unsubscribe = self._bus.subscribe(ALL_SESSIONS_TOPIC, self._changed,
                                                self._wakeup.set)

    def _changed(self, change: object) -> None:
        if self._dispatcher.listening and not isinstance(change, WebhookDisabled):
            self._wakeup.set()

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        for worker in list(self._workers.values()):
            await worker.stop()
        self._workers.clear()
        await self._transport.close()

    async def recover_interrupted(self, nodes: list[str]) -> int:
        """Several nodes: attempts of `nodes`, found dead, go out again now."""
        released = await self.outbox.release_interrupted(nodes)
        if released:
            self.wake()
        return released

    async def run_once(self) -> None:
        """One round: dispatch new events, and keep a worker per enabled endpoint."""
        await self._dispatcher.run_once()
        enabled = {endpoint.id for endpoint in await self.endpoints.all() if endpoint.enabled}
        for endpoint_id in set(self._workers) - enabled:
            await self._workers.pop(endpoint_id).stop()
        for endpoint_id in enabled - set(self._workers):
            worker = self._workers[endpoint_id] = _Worker(
                endpoint_id, self, self._settings.webhook_concurrency,
                self._settings.webhook_poll_seconds)
            worker.start()
        now = self._clock.now()
        if now - self._pruned_at >= _PRUNE_EVERY:
            self._pruned_at = now
            await self.outbox.prune(now - self._settings.webhook_log_retention_seconds)

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                await self.run_once()
            except Exception:
                log.exception("webhook dispatch failed; trying again")
            await nap(self._wakeup, self._settings.webhook_poll_seconds)

    async def deliver(self, endpoint_id: str, claimed: Claimed) -> None:
        """Send one claimed message and record how it went."""
        url, keys = await self.endpoints.signing_keys(endpoint_id)
        body = claimed.body.encode()
        headers = signing.headers(keys, claimed.event_id, int(self._clock.now()), body)
        reply = await self._transport.post(url, headers, body)
        if not reply.ok:  # not the URL: its query may hold the receiver's own token
            log.info("webhook %s: %s failed (attempt %d): %s", endpoint_id,
                     claimed.event_id, claimed.attempts, reply.error)
        if await self.outbox.finish(endpoint_id, claimed, reply):
            await self._disabled(endpoint_id, reply)

    async def _disabled(self, endpoint_id: str, reply: Reply) -> None:
        endpoint = await self.endpoints.get(endpoint_id)
        log.warning("webhook %s disabled: %s", endpoint.id, endpoint.disabled_reason)
        self._bus.publish(ALL_SESSIONS_TOPIC, WebhookDisabled(
            {"id": endpoint.id, "url": endpoint.url, "reason": endpoint.disabled_reason}))
        self.wake()


class _Worker:
    """Sends one endpoint's messages from this node: up to `webhook_concurrency` at once."""

    def __init__(self, endpoint_id: str, service: WebhookService, limit: int,
                 poll: float) -> None:
        self.endpoint_id = endpoint_id
        self.wakeup = asyncio.Event()
        self._service = service
        self._limit = limit
        self._poll = poll
        self._sending: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"webhook {self.endpoint_id}")

    async def stop(self) -> None:
        tasks = [task for task in (self._task, *self._sending) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self.wakeup.clear()
            claimed: list[Claimed] = []
            free = self._limit - len(self._sending)
            if free > 0:
                try:
                    claimed = await self._service.outbox.claim(self.endpoint_id, free)
                except Exception:
                    log.exception("webhook %s: claiming failed; trying again",
                                  self.endpoint_id)
            for message in claimed:
                task = asyncio.create_task(self._send(message),
                                           name=f"webhook {message.event_id}")
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)
            if not claimed:
                await nap(self.wakeup, self._poll)

    async def _send(self, claimed: Claimed) -> None:
        try:
            await self._service.deliver(self.endpoint_id, claimed)
        except NotFound:
            pass  # the endpoint was deleted meanwhile, and its messages with it
        except Exception:
            log.exception("webhook %s: sending %s failed", self.endpoint_id, claimed.event_id)
        finally:
            self.wakeup.set()  # the next message of its session may go now



def _audited(endpoint: Endpoint) -> dict[str, Any]:
    """An endpoint as the audit log names it: its address without the query (which may
    hold the receiver's own token), never its secret."""
    parts = urlsplit(endpoint.url)
    host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    return {"id": endpoint.id, "url": f"{parts.scheme}://{host}{parts.path}",
            "events": sorted(endpoint.event_types), "enabled": endpoint.enabled,
            "description": endpoint.description}
