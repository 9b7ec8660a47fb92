"""Typed application state. `get_broker` fails loudly if the app was built without it."""

from __future__ import annotations

import weakref
from typing import Final

from aiohttp import web

from broker.core import Broker

from .i18n import Catalogs

BROKER: Final = web.AppKey("broker", Broker)
CATALOGS: Final = web.AppKey("catalogs", Catalogs)
SOCKETS: Final[web.AppKey[weakref.WeakSet[web.WebSocketResponse]]] = web.AppKey("sockets")


def get_broker(app: web.Application) -> Broker:
    try:
        return app[BROKER]
    except KeyError:
        raise RuntimeError("the broker is not open: create_app() sets it up on startup") from None
