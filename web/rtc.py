"""Screen-sharing frames on the session socket (docs/protocol.md, "Screen sharing").

Share changes go to the share service, which stores them as session events; signaling is
relayed to the other peer of the share (on whatever node it is), or held for it until it
says `rtc.ready`. A socket that closes is no longer ready: what comes for it is held again.
"""

from __future__ import annotations

import dataclasses

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

from .ws import CLOSE_HOOKS, Connection, Participant, handles


@dataclasses.dataclass(frozen=True, slots=True)
class _SocketPresence:
    """A participant's socket, for as long as it is open (equal for the same socket)."""

    conn: Connection

    def alive(self) -> bool:
        return not (self.conn.closing or self.conn.ws.closed)

    def send(self, frame: Message) -> None:
        self.conn.send(frame)


@handles(ShareRequest)
async def _request(p: Participant, message: ShareRequest) -> None:
    await p.broker.shares.request(p.session.id, p.actor, message.id, message.direction,
                                  message.source)


@handles(ShareConsent)
async def _consent(p: Participant, message: ShareConsent) -> None:
    await p.broker.shares.consent(p.session.id, p.actor, message.id, message.accept)


@handles(ShareStart)
async def _start(p: Participant, message: ShareStart) -> None:
    await p.broker.shares.start(p.session.id, p.actor, message.id)


@handles(SharePause)
async def _pause(p: Participant, message: SharePause) -> None:
    await p.broker.shares.pause(p.session.id, p.actor, message.id)


@handles(ShareResume)
async def _resume(p: Participant, message: ShareResume) -> None:
    await p.broker.shares.resume(p.session.id, p.actor, message.id)


@handles(ShareStop)
async def _stop(p: Participant, message: ShareStop) -> None:
    await p.broker.shares.stop(p.session.id, p.actor, message.id, message.reason)


@handles(RtcReady)
async def _ready(p: Participant, message: RtcReady) -> None:
    await p.broker.shares.ready(p.session.id, p.actor, message.id, message.fresh,
                                _SocketPresence(p.conn))


@handles(RtcOffer)
@handles(RtcAnswer)
@handles(RtcCandidate)
@handles(RtcRestart)
async def _relay(p: Participant, message: RtcOffer | RtcAnswer | RtcCandidate | RtcRestart
                 ) -> None:
    await p.broker.shares.relay(p.session.id, p.actor, message)


@handles(ControlRequest)
async def _control_request(p: Participant, message: ControlRequest) -> None:
    await p.broker.shares.request_control(p.session.id, p.actor, message.id)


@handles(ControlConsent)
async def _control_consent(p: Participant, message: ControlConsent) -> None:
    await p.broker.shares.answer_control(p.session.id, p.actor, message.id, message.accept)


@handles(ControlStop)
async def _control_stop(p: Participant, message: ControlStop) -> None:
    await p.broker.shares.stop_control(p.session.id, p.actor, message.id, message.reason)


async def _socket_closed(p: Participant) -> None:
    await p.broker.shares.detach(_SocketPresence(p.conn))


if _socket_closed not in CLOSE_HOOKS:
    CLOSE_HOOKS.append(_socket_closed)
