"""The agent's side of one share: an aiortc peer connection that sends the screen and
carries the control data channel, driven by the rtc.* frames of docs/protocol.md.

The agent is always the sharing side, so it always makes the offers: after `rtc.peer_ready`
(the viewer has a new connection), after `rtc.restart` (media failed; aiortc cannot
restart ICE, so this is a whole new connection), and, when it resumed a share after a
restart of its own, as soon as it has its `rtc.config`. Each offer is a new
RTCPeerConnection with a new screen track; aiortc gathers all candidates before the offer
is made, so the offer carries them and only the viewer trickles.

Frames are handled one after another on a task of this link, so a slow negotiation never
holds up the session socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import candidate_from_sdp

from broker.errors import ProtocolError
from broker.protocol.channel import (
    ChannelMessage,
    ClipboardGet,
    ClipboardSet,
    Control,
    Cursor,
    Refused,
    Screen,
    channel_json,
    encode_channel,
)
from broker.protocol.rtc import (
    RtcAnswer,
    RtcCandidate,
    RtcConfig,
    RtcOffer,
    RtcPeerReady,
    RtcReady,
    RtcRestart,
)

from .adapt import Limits
from .capture import FrameSource, ScreenTrack
from .connection import Send
from .control import ControlSession
from .tasks import Tasks

log = logging.getLogger(__name__)
CURSOR_INTERVAL = 0.05
STATS_INTERVAL = 2.0
# The signaling frames a share's link takes (from the broker, or the viewer through it).
Signal = RtcConfig | RtcPeerReady | RtcRestart | RtcAnswer | RtcCandidate


def rtc_configuration(config: RtcConfig) -> RTCConfiguration:
    """The broker's rtc.config as aiortc's configuration (never aiortc's default STUN)."""
    servers = [RTCIceServer(urls=s["urls"], username=s.get("username"),
                            credential=s.get("credential")) for s in config.ice_servers]
    policy = (RTCIceTransportPolicy.RELAY if config.ice_transport_policy == "relay"
              else RTCIceTransportPolicy.ALL)
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


class SharerPeer:
    """One share's media and control channel, from this computer to the technician."""

    def __init__(self, share_id: str, send: Send, source: FrameSource, limits: Limits,
                 control: ControlSession, codec: str = "vp8",
                 on_channel: Callable[[dict[str, Any]], Awaitable[ChannelMessage]]
                 | None = None) -> None:
        self.share_id = share_id
        self._send = send
        self.source = source
        self.limits = limits
        self.control = control
        self.codec = codec
        self._on_channel = on_channel
        self.pc: RTCPeerConnection | None = None
        self.track: ScreenTrack | None = None
        self.channel: RTCDataChannel | None = None
        self.config: RtcConfig | None = None
        self.offer_on_config = False
        self.paused = False
        self.offers = 0
        self._remote_candidates: list[RtcCandidate] = []
        self._inbox: asyncio.Queue[Signal] = asyncio.Queue()
        self._tasks = Tasks()              # the link's own: its frames, one after another
        self._connection_tasks = Tasks()   # the current peer connection's
        self._tasks.spawn(self._work())

    def handle(self, frame: Signal) -> None:
        """Take one rtc.* frame for this share (handled in order, on this link's task)."""
        self._inbox.put_nowait(frame)

    async def ready(self, fresh: bool = True) -> None:
        await self._send(RtcReady(self.share_id, fresh=fresh))

    def send_channel(self, message: ChannelMessage) -> None:
        if self.channel is not None and self.channel.readyState == "open":
            self.channel.send(encode_channel(message))

    async def set_paused(self, paused: bool) -> None:
        """Paused: no frames leave this computer at all."""
        if paused == self.paused:
            return
        self.paused = paused
        if self.pc is not None:
            for sender in self.pc.getSenders():
                if sender.kind == "video":
                    sender.replaceTrack(None if paused else self.track)

    async def close(self) -> None:
        await self._tasks.close()
        await self._close_pc()

    # -- inside -----------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            frame = await self._inbox.get()
            try:
                await self._frame(frame)
            except Exception:
                log.exception("could not handle %s", frame.TYPE)

    async def _frame(self, frame: Signal) -> None:
        if isinstance(frame, RtcConfig):
            self.config = frame
            if self.offer_on_config:
                self.offer_on_config = False
                await self._offer()
        elif isinstance(frame, RtcPeerReady | RtcRestart):
            await self._offer()
        elif isinstance(frame, RtcAnswer):
            if self.pc is not None and self.pc.signalingState == "have-local-offer":
                await self.pc.setRemoteDescription(RTCSessionDescription(frame.sdp, "answer"))
                waiting, self._remote_candidates = self._remote_candidates, []
                for candidate in waiting:
                    await self._add_candidate(candidate)
        elif self.pc is None or self.pc.remoteDescription is None:
            self._remote_candidates.append(frame)
        else:
            await self._add_candidate(frame)

    async def _add_candidate(self, frame: RtcCandidate) -> None:
        assert self.pc is not None
        if not frame.candidate:
            await self.pc.addIceCandidate(None)
            return
        candidate = candidate_from_sdp(frame.candidate.removeprefix("candidate:"))
        candidate.sdpMid = frame.sdp_mid
        candidate.sdpMLineIndex = frame.sdp_mline_index
        try:
            await self.pc.addIceCandidate(candidate)
        except ValueError:
            log.debug("dropped a candidate for another connection")

    async def _offer(self) -> None:
        if self.config is None:
            self.offer_on_config = True
            return
        await self._close_pc()
        pc = RTCPeerConnection(rtc_configuration(self.config))
        self.pc = pc
        self._remote_candidates = []
        self.track = ScreenTrack(self.source, self.limits)
        transceiver = pc.addTransceiver(self.track, direction="sendonly")
        codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs
                  if c.mimeType.lower() == f"video/{self.codec}"]
        if codecs:
            transceiver.setCodecPreferences(codecs)
        if self.paused:
            transceiver.sender.replaceTrack(None)
        self.channel = pc.createDataChannel("control", ordered=True)
        self.channel.on("open", self._channel_open)
        self.channel.on("message", self._channel_message)
        pc.on("connectionstatechange", lambda: log.info("media connection %s",
                                                        pc.connectionState))
        await pc.setLocalDescription(await pc.createOffer())
        if self.pc is not pc:
            return
        self.offers += 1
        await self._send(RtcOffer(self.share_id, pc.localDescription.sdp, restart=False))
        self._connection_tasks.spawn(self._watch_stats(pc))

    def _channel_open(self) -> None:
        screen = self.control.screen
        self.send_channel(Screen(screen.width, screen.height))
        self.send_channel(Control(self.control.granted))
        self._connection_tasks.spawn(self._report_cursor())

    def _channel_message(self, raw: Any) -> None:
        try:
            data = channel_json(raw)
        except ProtocolError as exc:
            self.send_channel(Refused(exc.code, str(exc)))
            return
        if data.get("t") in (ClipboardGet.T, ClipboardSet.T) and self._on_channel is not None:
            self._connection_tasks.spawn(self._answer(self._on_channel(data)))
            return
        answer = self.control.handle(data)
        if answer is not None:
            self.send_channel(answer)

    async def _answer(self, pending: Awaitable[ChannelMessage]) -> None:
        self.send_channel(await pending)

    async def _report_cursor(self) -> None:
        """Where this computer's pointer is, a few dozen times a second while it moves."""
        last: tuple[int, int] | None | str = "unknown"
        while self.channel is not None and self.channel.readyState == "open":
            try:
                position = self.control.cursor()
            except Exception:
                position = None
            if position != last:
                last = position
                self.send_channel(Cursor(*position) if position else Cursor(None, None))
            await asyncio.sleep(CURSOR_INTERVAL)

    async def _watch_stats(self, pc: RTCPeerConnection) -> None:
        """Feed the viewer's reported packet loss to the frame-rate adapter."""
        while self.pc is pc:
            await asyncio.sleep(STATS_INTERVAL)
            try:
                report = await pc.getStats()
            except Exception:
                log.debug("no statistics this time", exc_info=True)
                continue
            for stats in report.values():
                if getattr(stats, "type", "") == "remote-inbound-rtp" and self.track:
                    self.track.loss = float(getattr(stats, "fractionLost", 0) or 0)

    async def _close_pc(self) -> None:
        self._connection_tasks.cancel()
        pc, track = self.pc, self.track
        self.pc, self.track, self.channel = None, None, None
        if pc is not None:
            with contextlib.suppress(Exception):
                await pc.close()
        if track is not None:
            track.stop()
