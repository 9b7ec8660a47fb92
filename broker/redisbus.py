"""The event bus between broker nodes: Redis pub/sub, one channel per topic.

A node delivers what it publishes to its own subscribers at once (as `LocalBus` does) and
hands it to one publisher task, which sends whatever has queued up since its last round
in one pipeline, one ``PUBLISH`` per channel holding all of that channel's messages. A
node subscribes to a topic's channel while it has local subscribers for it: a session's
channel only on the nodes where someone of that session is connected, a technician's
only where their dashboard is open.

Messages carry the publishing node's id (a node ignores its own when Redis echoes them)
and the time they were sent (the receiver records the lag). Redis is not a store: what is
published while a node is not subscribed is lost. So whenever a channel's subscription
takes effect (first subscriber, or again after Redis came back), the topic's subscribers
get `on_resync`, and fill any gap from the database by sequence number.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from .bus import Callback, LocalBus, Resync
from .buscodec import Codec
from .metrics import Metrics

log = logging.getLogger(__name__)

PREFIX = "sb:"
# At most this many messages wait for the publisher; beyond that the oldest are dropped
# (counted in broker_bus_dropped_total; stored events are filled in from the database).
OUTBOX_LIMIT = 100_000
# How long a quiet subscription may go without hearing from Redis (it is pinged every
# HEALTH_CHECK_SECONDS) before the node reconnects.
HEALTH_CHECK_SECONDS = 5.0
SILENCE_SECONDS = 15.0
_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


class RedisBus:
    """EventBus over Redis for several nodes; see the module docstring."""

    def __init__(self, url: str, codec: Codec, metrics: Metrics, *, node_id: str,
                 prefix: str = PREFIX) -> None:
        self._url = url
        self._codec = codec
        self._metrics = metrics
        self._node_id = node_id
        self._prefix = prefix
        self._local = LocalBus()
        self._resync: dict[str, set[Resync]] = {}
        self._outbox: list[tuple[str, Any]] = []
        self._wakeup = asyncio.Event()
        self._wanted: set[str] = set()      # channels this node should be subscribed to
        self._applied: set[str] = set()     # channels the current connection subscribed
        self._changed = asyncio.Event()
        self._pubsub: Any = None
        self._client: redis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = asyncio.Event()

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def prefix(self) -> str:
        """What every key and channel of this cluster starts with."""
        return self._prefix

    @property
    def client(self) -> redis.Redis:
        """The connection (pool) to Redis, for other parts that keep state there."""
        if self._client is None:
            raise ConnectionError("the bus is not started")
        return self._client

    def _connect(self) -> redis.Redis:
        return redis.Redis.from_url(
            self._url, socket_keepalive=True,
            socket_connect_timeout=5, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2))

    async def start(self) -> None:
        self._client = self._connect()
        await self._client.ping()  # a wrong URL stops the broker at start, not later
        self._tasks = [asyncio.create_task(self._publish_loop(), name="bus-publisher"),
                       asyncio.create_task(self._read_loop(), name="bus-reader"),
                       asyncio.create_task(self._subscribe_loop(), name="bus-subscriber")]
        async with asyncio.timeout(10):
            await self._connected.wait()

    async def close(self) -> None:
        if self._outbox and self._client is not None:
            with contextlib.suppress(*_ERRORS):
                async with asyncio.timeout(2):
                    await self._flush()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def ping(self) -> None:
        if self._client is None:
            raise ConnectionError("the bus is not started")
        async with asyncio.timeout(2):
            await self._client.ping()
        if not self._connected.is_set():
            raise ConnectionError("the subscription to Redis is down")

    # -- EventBus ----------------------------------------------------------------------------

    def publish(self, topic: str, message: Any) -> None:
        self._local.publish(topic, message)
        if len(self._outbox) >= OUTBOX_LIMIT:
            del self._outbox[0]
            self._metrics.bus_dropped.inc()
        self._outbox.append((topic, message))
        self._wakeup.set()

    def subscribe(self, topic: str, callback: Callback,
                  on_resync: Resync | None = None) -> Callable[[], None]:
        unsubscribe_local = self._local.subscribe(topic, callback)
        if on_resync is not None:
            self._resync.setdefault(topic, set()).add(on_resync)
        channel = self._prefix + topic
        if channel not in self._wanted:
            self._wanted.add(channel)
            self._changed.set()

        def unsubscribe() -> None:
            unsubscribe_local()
            if on_resync is not None:
                waiting = self._resync.get(topic)
                if waiting is not None:
                    waiting.discard(on_resync)
                    if not waiting:
                        del self._resync[topic]
            if not self._local.subscriber_count(topic):
                self._wanted.discard(channel)
                self._changed.set()

        return unsubscribe

    # -- publishing --------------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self._flush()
            except _ERRORS as exc:
                log.warning("could not publish to Redis (%s); trying again", exc)
                await asyncio.sleep(0.2)
            except Exception:
                log.exception("could not publish to Redis")

    async def _flush(self) -> None:
        batch, self._outbox = self._outbox, []
        if not batch or self._client is None:
            return
        grouped: dict[str, list[Any]] = {}
        for topic, message in batch:
            grouped.setdefault(topic, []).append(self._codec.dump(message))
        sent_at = time.time()
        pipe = self._client.pipeline(transaction=False)
        for topic, messages in grouped.items():
            pipe.publish(self._prefix + topic, json.dumps(
                {"o": self._node_id, "t": sent_at, "m": messages},
                separators=(",", ":"), ensure_ascii=False))
        try:
            await pipe.execute()
        except _ERRORS:
            self._metrics.bus_dropped.inc(len(batch))
            raise
        self._metrics.bus_published.inc(len(batch))

    # -- subscribing -------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        delay = 0.05
        first = True
        while True:
            assert self._client is not None
            pubsub = self._client.pubsub()
            try:
                channels = sorted(self._wanted) or [self._prefix + "node:" + self._node_id]
                await pubsub.subscribe(*channels)
                self._pubsub, self._applied = pubsub, set(channels)
                self._changed.set()  # subscribe what was wanted meanwhile
                heard, pinged = time.monotonic(), False
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    now = time.monotonic()
                    if message is None:
                        if now - heard > SILENCE_SECONDS:
                            raise ConnectionError("no word from Redis")
                        if now - heard > HEALTH_CHECK_SECONDS and not pinged:
                            await pubsub.ping()  # the answer comes as a "pong" message
                            pinged = True
                        continue
                    heard, pinged = now, False
                    if not self._connected.is_set():
                        self._connected.set()
                        if not first:
                            log.info("reconnected to Redis")
                        first, delay = False, 0.05
                    self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._connected.is_set():
                    log.warning("lost the subscription to Redis (%s); reconnecting", exc)
                self._connected.clear()
                self._metrics.bus_reconnects.inc()
            finally:
                self._pubsub, self._applied = None, set()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed in newer redis
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _subscribe_loop(self) -> None:
        """Keep the connection's subscriptions equal to what local subscribers want."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            pubsub = self._pubsub
            if pubsub is None:
                continue  # the reader subscribes everything wanted when it reconnects
            wanted = set(self._wanted)
            add, drop = wanted - self._applied, self._applied - wanted
            try:
                if add:
                    await pubsub.subscribe(*sorted(add))
                    self._applied |= add
                if drop:
                    await pubsub.unsubscribe(*sorted(drop))
                    self._applied -= drop
            except _ERRORS as exc:
                log.warning("could not change subscriptions (%s)", exc)  # the reader sees it

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = _text(message.get("channel"))
        if channel is None or not channel.startswith(self._prefix):
            return
        topic = channel[len(self._prefix):]
        if kind == "subscribe":
            # The subscription is live from here on; what came before it is in the
            # database.
            for on_resync in tuple(self._resync.get(topic, ())):
                try:
                    on_resync()
                except Exception:
                    log.exception("resync of %s failed", topic)
            return
        if kind != "message":
            return
        try:
            envelope = json.loads(message["data"])
            if envelope["o"] == self._node_id:
                return  # delivered locally when it was published
            self._metrics.bus_lag.observe(max(0.0, time.time() - float(envelope["t"])))
            items = [self._codec.load(item) for item in envelope["m"]]
        except Exception:
            log.exception("unreadable message on %s", channel)
            return
        self._metrics.bus_received.inc(len(items))
        for item in items:
            self._local.publish(topic, item)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str) else None
