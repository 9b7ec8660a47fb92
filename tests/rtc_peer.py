"""An aiortc peer that speaks the broker's screen-sharing protocol over a session socket.

As the sharing side it sends aiortc's synthetic video (or any track it is given); as the
viewing side it counts the frames it decodes. It owns the socket's reading: frames that
are not signaling wait in `inbox` for the test (`next`, `next_event`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import candidate_from_sdp


def rtc_configuration(config: dict[str, Any]) -> RTCConfiguration:
    """The broker's rtc.config as aiortc's RTCConfiguration (never aiortc's default STUN)."""
    servers = [RTCIceServer(urls=s["urls"], username=s.get("username"),
                            credential=s.get("credential")) for s in config["ice_servers"]]
    policy = (RTCIceTransportPolicy.RELAY if config["ice_transport_policy"] == "relay"
              else RTCIceTransportPolicy.ALL)
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


class AiortcPeer:
    def __init__(self, ws: ClientWebSocketResponse, share_id: str, *, sharer: bool,
                 track: MediaStreamTrack | None = None, offer_early: bool = False) -> None:
        self.ws = ws
        self.share_id = share_id
        self.sharer = sharer
        self.offer_early = offer_early  # offer at once instead of waiting for peer_ready
        self._track = track
        self.pc: RTCPeerConnection | None = None
        self.config: dict[str, Any] | None = None
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.frames = 0
        self.first_frame_at: float | None = None
        self.got_frame = asyncio.Event()
        self.offers = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._spawn(self._pump())

    @property
    def track(self) -> MediaStreamTrack:
        if self._track is None:
            self._track = VideoStreamTrack()
        return self._track

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send(self, type_: str, **fields: Any) -> None:
        await self.ws.send_json({"type": type_, **fields})

    async def share(self, type_: str, **fields: Any) -> None:
        """A share.* or rtc.* frame about this share."""
        await self.send(type_, id=self.share_id, **fields)

    async def next(self, kind: str | None = None, seconds: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(seconds):
            while True:
                frame = await self.inbox.get()
                if kind is None or frame["type"] == kind:
                    return frame

    async def next_event(self, event_type: str, seconds: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(seconds):
            while True:
                frame = await self.next("event", seconds)
                if frame["event"]["type"] == event_type:
                    return dict(frame["event"])

    async def wait_frames(self, count: int, seconds: float = 15) -> None:
        """Until `count` more frames than now have been decoded."""
        target = self.frames + count
        async with asyncio.timeout(seconds):
            while self.frames < target:
                await asyncio.sleep(0.02)

    async def _pump(self) -> None:
        async for message in self.ws:
            if message.type != WSMsgType.TEXT:
                break
            frame = json.loads(message.data)
            if frame["type"].startswith("rtc.") and frame.get("id") == self.share_id:
                await self._signal(frame)
            else:
                await self.inbox.put(frame)

    async def _signal(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "rtc.config":
            self.config = frame
            if not self.sharer:
                await self._new_pc()
            elif self.offer_early:
                await self._offer()
        elif kind == "rtc.peer_ready" and self.sharer:
            if not (self.offer_early and self.offers):
                await self._offer()
        elif kind == "rtc.offer" and not self.sharer:
            if self.pc is None:
                await self._new_pc()
            assert self.pc is not None
            await self.pc.setRemoteDescription(RTCSessionDescription(frame["sdp"], "offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self.share("rtc.answer", sdp=self.pc.localDescription.sdp)
        elif kind == "rtc.answer" and self.pc is not None:
            await self.pc.setRemoteDescription(RTCSessionDescription(frame["sdp"], "answer"))
        elif kind == "rtc.candidate" and self.pc is not None:
            if frame["candidate"]:
                candidate = candidate_from_sdp(frame["candidate"].removeprefix("candidate:"))
                candidate.sdpMid = frame["sdp_mid"]
                candidate.sdpMLineIndex = frame["sdp_mline_index"]
                await self.pc.addIceCandidate(candidate)
        await self.inbox.put(frame)

    async def _new_pc(self) -> None:
        assert self.config is not None
        if self.pc is not None:
            await self.pc.close()
        self.pc = RTCPeerConnection(rtc_configuration(self.config))

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._spawn(self._count(track))

    async def _offer(self) -> None:
        await self._new_pc()
        assert self.pc is not None
        self.pc.addTrack(self.track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.offers += 1
        await self.share("rtc.offer", sdp=self.pc.localDescription.sdp)

    async def _count(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(Exception):
            while True:
                await track.recv()
                self.frames += 1
                if self.first_frame_at is None:
                    self.first_frame_at = time.perf_counter()
                    self.got_frame.set()

    async def switch(self, share_id: str, *, sharer: bool, offer_early: bool = False) -> None:
        """Take part in another share of the session instead (what a page does when the
        technician switches direction): the old peer connection closes."""
        if self.pc is not None:
            await self.pc.close()
            self.pc = None
        self.share_id, self.sharer, self.offer_early = share_id, sharer, offer_early
        self.config, self.offers = None, 0

    async def pause_media(self, paused: bool) -> None:
        """What a sharing page does on share.paused / share.resumed: stop sending frames."""
        assert self.pc is not None
        for sender in self.pc.getSenders():
            sender.replaceTrack(None if paused else self.track)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.pc is not None:
            await self.pc.close()
        if self._track is not None:
            self._track.stop()
        await self.ws.close()
