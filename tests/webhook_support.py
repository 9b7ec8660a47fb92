"""A help desk's webhook receiver on loopback, written from the Standard Webhooks
specification alone: it verifies every request with the `standardwebhooks` package,
de-duplicates by `webhook-id`, and fails, hangs or redirects when a test tells it to."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

# What the receiver does with the next request: answer 200, fail with 500, hang until it
# is stopped (the broker's time limit ends the attempt), or send a redirect.
OK, FAIL, HANG, REDIRECT = "ok", "fail", "hang", "redirect"


@dataclasses.dataclass(frozen=True)
class Arrival:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: str

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def signatures(self) -> list[str]:
        return self.headers["webhook-signature"].split(" ")


class Receiver:
    """An aiohttp server on 127.0.0.1. `plan` says how to answer the coming requests (then
    `default`); `arrivals` holds every request, in order of arrival."""

    def __init__(self, default: str = OK) -> None:
        self.default = default
        self.plan: collections.deque[str] = collections.deque()
        self.arrivals: list[Arrival] = []
        self.secrets: list[str] = []  # a request must verify with one of these
        self.unverified: list[str] = []
        self.on_arrival: Callable[[Arrival], str | None] | None = None
        self._arrived = asyncio.Condition()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self, port: int = 0) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        app.router.add_post("/elsewhere", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        answer = self.plan.popleft() if self.plan else self.default
        headers = {k.lower(): v for k, v in request.headers.items()}
        arrival = Arrival(request.path, headers, body, answer)
        self._check(arrival)
        async with self._arrived:
            self.arrivals.append(arrival)
            self._arrived.notify_all()
        if answer == HANG:
            await self._release.wait()
        if answer == FAIL:
            return web.Response(status=500, text="down for maintenance")
        if answer == REDIRECT:
            raise web.HTTPFound(f"http://127.0.0.1:{self.port}/elsewhere")
        return web.Response(status=200, text="ok")

    def _check(self, arrival: Arrival) -> None:
        """Verify as a receiver would, with the package. The broker signs with its clock,
        which tests may have driven days ahead: then the package's 5-minute window refuses
        the timestamp, and the signature is checked against the package's own signing."""
        if not self.secrets:
            return
        for secret in self.secrets:
            try:
                Webhook(secret).verify(arrival.body, arrival.headers)
                return
            except WebhookVerificationError as refused:
                if "timestamp" not in str(refused):
                    continue
            stamp = datetime.fromtimestamp(int(arrival.headers["webhook-timestamp"]), UTC)
            expected = Webhook(secret).sign(arrival.headers["webhook-id"], stamp, arrival.body)
            if expected in arrival.signatures:
                return
        self.unverified.append(arrival.headers.get("webhook-id", "?"))

    async def wait_for(self, done: Callable[[list[Arrival]], bool], seconds: float = 10) -> None:
        async with asyncio.timeout(seconds), self._arrived:
            await self._arrived.wait_for(lambda: done(self.arrivals))

    async def next_arrival(self, seconds: float) -> bool:
        """Whether a request arrives within `seconds`."""
        count = len(self.arrivals)
        try:
            await self.wait_for(lambda arrivals: len(arrivals) > count, seconds)
        except TimeoutError:
            return False
        return True

    def unique(self) -> dict[str, dict[str, Any]]:
        """Each event once, as a receiver de-duplicating by webhook-id keeps them."""
        found: dict[str, dict[str, Any]] = {}
        for arrival in self.arrivals:
            found.setdefault(arrival.headers["webhook-id"], arrival.event)
        return found

    def first_order(self, session_id: str) -> list[str]:
        """The types of one session's events, in the order each first arrived."""
        return [event["type"] for event in self.unique().values()
                if event["data"].get("session_id") == session_id]
