"""The typing indicator on the session socket: `chat.typing` from a participant goes to
the session's other participants as `typing` (broker/sessions/typists.py)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from broker.protocol.chat import ChatTyping
from broker.sessions.typists import Typist

from .ws import Participant, SessionConnection, get_frame_handlers

# Each socket's typist, from its first chat.typing until it closes.
_TYPISTS: Final = web.AppKey("typists", dict[SessionConnection, Typist])


async def _typing(p: Participant, message: ChatTyping) -> None:
    typists = p.request.app[_TYPISTS]
    typist = typists.get(p.conn)
    if typist is None:
        typist = typists[p.conn] = Typist(p.session.id, p.actor, p.broker.bus, p.broker.clock)
    typist.typing(message.typing)


async def _closed(p: Participant) -> None:
    typist = p.request.app[_TYPISTS].pop(p.conn, None)
    if typist is not None:
        typist.stop()


def setup(app: web.Application) -> None:
    app[_TYPISTS] = {}
    handlers = get_frame_handlers(app)
    handlers.add(ChatTyping, _typing)
    handlers.on_close(_closed)
