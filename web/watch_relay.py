"""The shared screen on the watch page (docs/supervision.md, "The shared screen"): the few
frames the watch socket takes (the supervisor's side of the relay's signaling, everything
else refused as `read_only`), and the technician's side on the session socket. The broker
only checks and relays them (broker/supervision/relay.py)."""

from __future__ import annotations

import dataclasses
import logging

from aiohttp import WSMsgType, web

from broker import protocol
from broker.errors import BrokerError, Forbidden
from broker.protocol.session import Error
from broker.protocol.supervision import (
    WatchAnswer,
    WatchCandidate,
    WatchOffer,
    WatchReady,
    WatchStop,
)
from broker.sessions import Signal
from broker.supervision.relay import WATCHER, new_address
from broker.technicians import Technician

from .state import get_broker
from .ws import Connection, Participant, get_frame_handlers

log = logging.getLogger(__name__)
_KEPT = 16  # the newest relays of a socket told to close when it does


@dataclasses.dataclass(slots=True)
class Watcher:
    """One watch socket's side of the relays: its address on the session's topic and the
    relays it asked for."""

    session_id: str
    technician: Technician
    address: str = dataclasses.field(default_factory=new_address)
    asked: int = 0
    relays: list[str] = dataclasses.field(default_factory=list)

    def wants(self, message: Signal) -> bool:
        return message.to == WATCHER + self.address


async def serve(request: web.Request, conn: Connection, watcher: Watcher) -> None:
    """Read the watch socket until it closes: the relay's frames go to the broker, every
    other frame gets an error (a supervisor who watches cannot write, share or control)."""
    relay = get_broker(request.app).watch_relay
    async for message in conn.ws:
        if message.type != WSMsgType.TEXT:
            if message.type == WSMsgType.BINARY:
                conn.send(Error("bad_message", "Binary frames are not part of this protocol."))
            continue
        ref: str | None = None
        try:
            frame = protocol.decode(message.data)
            ref = getattr(frame, "id", None)
            if isinstance(frame, WatchReady):
                watcher.asked += 1
                config = await relay.ready(watcher.technician, watcher.session_id,
                                           watcher.address, watcher.asked, frame.share)
                watcher.relays = [*watcher.relays[-_KEPT + 1:], config.id]
                conn.send(config)
            elif isinstance(frame, WatchAnswer | WatchCandidate | WatchStop):
                await relay.from_watcher(watcher.technician, watcher.session_id,
                                         watcher.address, frame)
            else:
                raise Forbidden("Watching is read-only: this socket takes only the frames "
                                "that bring the shared screen to you.", code="read_only")
        except BrokerError as error:
            conn.send(Error(error.code, error.message, ref))


async def gone(request: web.Request, watcher: Watcher) -> None:
    """The watch socket closed: the technician's page closes its relays to it."""
    if not watcher.relays:
        return
    try:
        await get_broker(request.app).watch_relay.left(watcher.session_id, watcher.relays)
    except Exception:  # the technician's page notices the dead connection by itself
        log.exception("could not tell the technician's page that a watcher left")


async def _from_technician(p: Participant, message: WatchOffer | WatchCandidate | WatchStop
                           ) -> None:
    await p.broker.watch_relay.from_technician(p.session.id, p.actor, message)


def setup(app: web.Application) -> None:
    handlers = get_frame_handlers(app)
    handlers.add(WatchOffer, _from_technician)
    handlers.add(WatchCandidate, _from_technician)
    handlers.add(WatchStop, _from_technician)
