"""The agent's socket to its session, and when to try again after losing it.

The socket says `hello` with the last sequence number this process has seen, so the broker
replays only what came after; an event already seen (a replay overlapping a live event) is
not handed on twice. Reconnecting waits longer each time, with jitter, and gives up when
the broker has not been reachable for longer than the reconnect window.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiohttp

from broker.errors import ProtocolError
from broker.protocol import Message, decode_from_broker, encode
from broker.protocol.session import EventFrame, Hello, Synced

from .state import ResumeState

log = logging.getLogger(__name__)
MAX_FRAME = 256 * 1024
OnFrame = Callable[[Message], Awaitable[None]]
# SessionSocket.send: False when the frame could not be sent (not connected).
Send = Callable[[Message], Coroutine[Any, Any, bool]]


class SessionSocket:
    """One WebSocket at a time to the session, with the position in its event stream."""

    def __init__(self, http: aiohttp.ClientSession, heartbeat_seconds: float) -> None:
        self._http = http
        self._heartbeat = heartbeat_seconds
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.last_seq = 0   # the last event this process has seen (what `hello` resumes)
        self.synced = False  # this connection's replay is complete

    async def connect(self, state: ResumeState, on_frame: OnFrame) -> int | None:
        """Connect, say hello, hand every frame to `on_frame` until the socket closes; the
        close code. Connection errors are raised (aiohttp.ClientError, OSError)."""
        url = state.base_url.replace("http", "ws", 1) + (
            f"/api/v1/sessions/{state.session_id}/ws")
        async with self._http.ws_connect(url, heartbeat=self._heartbeat,
                                         max_msg_size=MAX_FRAME) as ws:
            self._ws = ws
            try:
                await ws.send_str(encode(Hello(state.participant_token, self.last_seq)))
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    try:
                        frame = decode_from_broker(message.data)
                    except ProtocolError as exc:  # a newer broker's frame, say
                        log.info("ignored a frame: %s", exc)
                        continue
                    if isinstance(frame, Synced):
                        self.synced = True
                    elif isinstance(frame, EventFrame):
                        seq = frame.event["seq"]
                        if seq <= self.last_seq:
                            continue
                        self.last_seq = seq
                    await on_frame(frame)
            finally:
                self._ws, self.synced = None, False
            return ws.close_code

    async def send(self, message: Message) -> bool:
        """Send one frame; False when not connected right now (nothing is queued)."""
        ws = self._ws
        if ws is None or ws.closed:
            return False
        try:
            await ws.send_str(encode(message))
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()


class Backoff:
    """The wait before the next attempt: from 0.5 s, doubling up to 30 s, each time times a
    random factor between 0.5 and 1.5 (so that many agents do not return at once); none
    once the broker has been unreachable for `give_up_seconds`."""

    def __init__(self, give_up_seconds: float,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._give_up = give_up_seconds
        self._now = now
        self._failing_since: float | None = None
        self._attempt = 0
        self.connected = False   # a connection got through since the last failure

    def succeeded(self) -> None:
        """A connection got through (it synced): the next failure starts counting anew."""
        self.connected = True

    def next_delay(self) -> float | None:
        """Seconds to wait before trying again, or None: give up."""
        now = self._now()
        if self.connected or self._failing_since is None:
            self._failing_since, self._attempt, self.connected = now, 0, False
        if now - self._failing_since > self._give_up:
            return None
        delay = min(30.0, 0.5 * 2.0 ** self._attempt) * (0.5 + random.random())  # noqa: S311
        self._attempt += 1
        return delay
