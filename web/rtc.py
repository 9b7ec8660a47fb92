"""Screen-sharing frames on the session socket (docs/protocol.md, "Screen sharing").

Share changes go to the share service, which stores them as session events; signaling goes
to the share signaling, which relays it to the other peer of the share (on whatever node it
is) or holds it for that peer until it says `rtc.ready`. A socket that closes is no longer
ready: what comes for it is held again.
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from broker.protocol import Message
from broker.protocol.rtc import (
    ControlConsent,
    ControlRequest,
    ControlStop,
    RtcAnswer,
    RtcCandidate,
    RtcOffer,
    RtcReady,
    RtcRestart,
    ShareConsent,
    SharePause,
    ShareRequest,
    ShareResume,
    ShareStart,
    ShareStop,
)

from .ws import Connection, Participant, get_frame_handlers


@dataclasses.dataclass(frozen=True, slots=True)
class _SignalingSocket:
    """A participant's socket, for as long as it is open (equal for the same socket)."""

    conn: Connection

    def alive(self) -> bool:
        return not (self.conn.closing or self.conn.ws.closed)

    def send(self, frame: Message) -> None:
        self.conn.send(frame)


async def _request(p: Participant, message: ShareRequest) -> None:
    await p.broker.shares.request(p.session.id, p.actor, message.id, message.direction,
                                  message.source)


async def _consent(p: Participant, message: ShareConsent) -> None:
    await p.broker.shares.consent(p.session.id, p.actor, message.id, message.accept)


async def _start(p: Participant, message: ShareStart) -> None:
    await p.broker.shares.start(p.session.id, p.actor, message.id)


async def _pause(p: Participant, message: SharePause) -> None:
    await p.broker.shares.pause(p.session.id, p.actor, message.id)


async def _resume(p: Participant, message: ShareResume) -> None:
    await p.broker.shares.resume(p.session.id, p.actor, message.id)


async def _stop(p: Participant, message: ShareStop) -> None:
    await p.broker.shares.stop(p.session.id, p.actor, message.id, message.reason)


async def _ready(p: Participant, message: RtcReady) -> None:
    await p.broker.signaling.ready(p.session.id, p.actor, message.id, message.fresh,
                                   _SignalingSocket(p.conn))


async def _relay(p: Participant, message: RtcOffer | RtcAnswer | RtcCandidate | RtcRestart
                 ) -> None:
    await p.broker.signaling.relay(p.session.id, p.actor, message)


async def _control_request(p: Participant, message: ControlRequest) -> None:
    await p.broker.shares.request_control(p.session.id, p.actor, message.id)


async def _control_consent(p: Participant, message: ControlConsent) -> None:
    await p.broker.shares.answer_control(p.session.id, p.actor, message.id, message.accept)


async def _control_stop(p: Participant, message: ControlStop) -> None:
    await p.broker.shares.stop_control(p.session.id, p.actor, message.id, message.reason)


async def _socket_closed(p: Participant) -> None:
    await p.broker.signaling.detach(_SignalingSocket(p.conn))



def setup(app: web.Application) -> None:
    handlers = get_frame_handlers(app)
    handlers.add(ShareRequest, _request)
    handlers.add(ShareConsent, _consent)
    handlers.add(ShareStart, _start)
    handlers.add(SharePause, _pause)
    handlers.add(ShareResume, _resume)
    handlers.add(ShareStop, _stop)
    handlers.add(RtcReady, _ready)
    handlers.add(RtcOffer, _relay)
    handlers.add(RtcAnswer, _relay)
    handlers.add(RtcCandidate, _relay)
    handlers.add(RtcRestart, _relay)
    handlers.add(ControlRequest, _control_request)
    handlers.add(ControlConsent, _control_consent)
    handlers.add(ControlStop, _control_stop)
    handlers.on_close(_socket_closed)
