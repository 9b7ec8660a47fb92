"""A chaos client: a participant who writes lines while their connection drops at
random, keeping the promise of docs/protocol.md (resume with `after`, resend unacknowledged
lines with the same client id). Used by tests/test_chaos.py against a broker in the test
process and against a broker process that is killed with SIGKILL and started again."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import Any

import aiohttp


@dataclasses.dataclass
class Tally:
    frames: int = 0          # event frames received
    duplicates: int = 0      # event frames for a seq already seen
    out_of_order: int = 0    # event frames with a seq lower than one seen before
    disconnects: int = 0
    connect_failures: int = 0


class ChaosParticipant:
    """One side of one session, writing `count` lines and dropping at random."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str | list[str], session_id: str,
                 token: str, name: str, rng: random.Random) -> None:
        self.http = http
        # Several brokers: the first one, and the next when it cannot be reached.
        self.urls = [f"{base}/api/v1/sessions/{session_id}/ws"
                     for base in ([base_url] if isinstance(base_url, str) else base_url)]
        self.token = token
        self.name = name
        self.rng = rng
        self.seen: dict[int, dict[str, Any]] = {}   # seq -> event, as this participant saw it
        self.last_seq = 0
        self.unacked: dict[str, str] = {}           # client id -> text
        self.sent_ids: list[str] = []
        self.tally = Tally()
        self.synced_to = 0  # the transcript's end when this participant last caught up

    async def _session(self, ws: aiohttp.ClientWebSocketResponse, to_send: list[str],
                       drop_after: int) -> bool:
        """One connection: hello, replay, resend, send; returns True if it ended on purpose."""
        await ws.send_json({"type": "hello", "token": self.token, "after": self.last_seq})
        synced = False
        budget = drop_after
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            frame = message.json()
            if frame["type"] == "event":
                self._see(frame["event"])
            elif frame["type"] == "chat.ack":
                self.unacked.pop(frame["id"], None)
            elif frame["type"] == "synced":
                synced = True
                for client_id, text in list(self.unacked.items()):
                    await ws.send_json({"type": "chat.send", "id": client_id, "text": text})
            if synced and frame["type"] in ("synced", "chat.ack", "event"):
                while to_send and budget > 0 and len(self.unacked) < 3:
                    text = to_send.pop(0)
                    client_id = f"{self.name}-{len(self.sent_ids)}"
                    self.sent_ids.append(client_id)
                    self.unacked[client_id] = text
                    await ws.send_json({"type": "chat.send", "id": client_id, "text": text})
                    budget -= 1
                if budget <= 0 or (not to_send and not self.unacked):
                    return True
        return False

    @property
    def url(self) -> str:
        return self.urls[0]

    def _see(self, event: dict[str, Any]) -> None:
        self.tally.frames += 1
        seq = event["seq"]
        if seq in self.seen:
            self.tally.duplicates += 1
            return
        if seq < self.last_seq:
            self.tally.out_of_order += 1
        self.seen[seq] = event
        self.last_seq = max(self.last_seq, seq)
        if event.get("client_id") in self.unacked and event["author"]["name"] == self.name:
            self.unacked.pop(event["client_id"])

    async def run(self, count: int, deadline: float) -> None:
        to_send = [f"{self.name} line {i}" for i in range(count)]
        loop = asyncio.get_running_loop()
        while (to_send or self.unacked) and loop.time() < deadline:
            try:
                async with self.http.ws_connect(self.url, timeout=aiohttp.ClientWSTimeout(
                        ws_close=2)) as ws:
                    await self._session(ws, to_send, self.rng.randint(1, 8))
            except (aiohttp.ClientError, OSError, TimeoutError):
                self.tally.connect_failures += 1
                self.urls.append(self.urls.pop(0))
                await asyncio.sleep(0.1)  # the broker is down: try again shortly
            self.tally.disconnects += 1
            await asyncio.sleep(self.rng.uniform(0, 0.05))

    async def catch_up(self) -> None:
        """Connect once more and read until synced: the final view."""
        async with self.http.ws_connect(self.url) as ws:
            await ws.send_json({"type": "hello", "token": self.token, "after": self.last_seq})
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                frame = message.json()
                if frame["type"] == "event":
                    self._see(frame["event"])
                elif frame["type"] == "synced":
                    self.synced_to = frame["last_seq"]
                    return


async def midway(people: list[ChaosParticipant], lines: int, limit: float = 30.0) -> None:
    """Until the participants have sent a third of their `lines` each (at most `limit`
    seconds): a fault injected then meets traffic in flight, however fast the broker is."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while sum(len(p.sent_ids) for p in people) < len(people) * lines // 3:
        if loop.time() > end:
            raise AssertionError("the participants did not get a third of the way")
        await asyncio.sleep(0.01)


def compare(participant: ChaosParticipant, transcript: list[dict[str, Any]]) -> tuple[int, int]:
    """(lost, extra): stored events this participant never saw, and seen ones never stored.

    The transcript is taken up to where the participant last caught up: what follows is
    their own final disconnection, which nobody can watch themselves do."""
    stored = {event["seq"]: event for event in transcript}
    lost = sum(1 for seq in stored
               if seq <= participant.synced_to and seq not in participant.seen)
    extra = sum(1 for seq in participant.seen if seq not in stored)
    for seq, event in participant.seen.items():
        if seq in stored:
            assert event.get("text") == stored[seq].get("text"), (seq, event, stored[seq])
    return lost, extra
