"""Sockets close when the credential that opened them ends.

Every technician socket (a session socket opened with the login cookie or an API token,
and the dashboard socket) is tracked with its `Opener`: the technician, and the login it
was opened with (None for an API token). Whatever ends a credential publishes
`TechnicianChanged` on the technicians topic: a logout, an admin ending a login or taking
its seat, a password change or reset, and disabling a technician (which also revokes
their API tokens). Every node hears it and closes the sockets it ends with 4401 and the
`Ending` as the close reason, which the pages put into words. An admin who loses the
admin right keeps their credentials, but their sockets close with 4005 (reconnect): what a
socket may see was decided when it opened.

A socket's credential is checked once more just after the socket is tracked (it may have
ended while the socket opened), and every tracked socket's whenever messages between
nodes may have been lost (the bus's resync). API tokens are revoked only by disabling
their technician, so for a token socket that check is whether its technician is disabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from typing import Final, Protocol

from aiohttp import web

from broker.core import Broker
from broker.errors import NotFound
from broker.protocol.session import CloseCode
from broker.technicians import TECHNICIANS_TOPIC, Ending, TechnicianChanged

from .state import get_broker

log = logging.getLogger(__name__)


class Connection(Protocol):
    """A socket's outbound side (web/ws.py's `Connection`)."""

    def close(self, code: int, reason: str, *, drop_pending: bool = False) -> None: ...

    async def drain_and_stop(self) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Opener:
    """The credential a socket was opened with."""

    technician_id: int
    login_id: str | None = None  # None: an API token
    token_id: int | None = None  # that token


class Signouts:
    """This node's technician sockets by the credential that opened them."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._sockets: dict[int, dict[Connection, Opener]] = {}
        self._checks: set[asyncio.Task[None]] = set()

    async def track(self, opener: Opener, conn: Connection) -> Callable[[], None]:
        """Close `conn` when `opener` ends (at once if it has ended already); returns the
        function that stops tracking it, for when the socket closes."""
        mine = self._sockets.setdefault(opener.technician_id, {})
        mine[conn] = opener

        def untrack() -> None:
            mine.pop(conn, None)
            if not mine and self._sockets.get(opener.technician_id) is mine:
                del self._sockets[opener.technician_id]

        try:
            await self._check(opener, conn)
        except BaseException:
            untrack()
            raise
        return untrack

    @contextlib.asynccontextmanager
    async def tracked(self, opener: Opener, conn: Connection) -> AsyncIterator[None]:
        """A technician socket's life: tracked while it serves (closed when `opener`
        ends), then drained and stopped, whatever happened."""
        try:
            untrack = await self.track(opener, conn)
            try:
                yield
            finally:
                untrack()
        finally:
            await conn.drain_and_stop()

    def changed(self, change: TechnicianChanged) -> None:
        """A technician changed somewhere in the cluster: close what their change ended.
        An admin who is one no more has every socket closed with RIGHTS_CHANGED: the
        client reconnects, and the broker decides anew what it may see (the dashboard's
        list of every session, sessions they were not in)."""
        ending = change.ending or Ending.LOGOUT
        for conn, opener in list(self._sockets.get(change.technician_id, {}).items()):
            if change.ends(opener.login_id, opener.token_id):
                _close(conn, ending)
            elif change.admin_revoked:
                conn.close(CloseCode.RIGHTS_CHANGED, "admin_revoked", drop_pending=True)

    def resync(self) -> None:
        """Changes may have been missed: check every tracked socket's credential."""
        task = asyncio.create_task(self._check_all(), name="signouts resync")
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def close(self) -> None:
        for task in list(self._checks):
            task.cancel()
        for task in list(self._checks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _check_all(self) -> None:
        tracked = [(conn, opener) for sockets in list(self._sockets.values())
                   for conn, opener in list(sockets.items())]
        try:
            endings = await self._broker.logins.endings(
                list({o.login_id for _, o in tracked if o.login_id is not None}))
            token_endings = {o: await self._ending(o) for _, o in tracked
                             if o.login_id is None}
        except Exception:  # the next resync (or the credential's event) comes
            log.exception("checking the credentials of open sockets failed")
            return
        for conn, opener in tracked:
            ending = (endings[opener.login_id] if opener.login_id is not None
                      else token_endings[opener])
            if ending is not None:
                _close(conn, ending)

    async def _check(self, opener: Opener, conn: Connection) -> None:
        ending = await self._ending(opener)
        if ending is not None:
            _close(conn, ending)

    async def _ending(self, opener: Opener) -> Ending | None:
        if opener.login_id is not None:
            return await self._broker.logins.ending(opener.login_id)
        try:
            disabled = (await self._broker.technicians.get(opener.technician_id)).disabled
        except NotFound:
            disabled = True
        if disabled:
            return Ending.TECHNICIAN_DISABLED
        if opener.token_id is not None and not await self._broker.technicians.tokens.alive(
                opener.token_id):
            return Ending.LOGOUT
        return None

def _close(conn: Connection, ending: Ending) -> None:
    # What was still queued for the socket is not for this credential any more.
    conn.close(CloseCode.UNAUTHENTICATED, ending.value, drop_pending=True)


_SIGNOUTS: Final = web.AppKey("signouts", Signouts)


def get_signouts(app: web.Application) -> Signouts:
    try:
        return app[_SIGNOUTS]
    except KeyError:
        raise RuntimeError("no signouts: create_app() sets them up on startup") from None


def setup(app: web.Application) -> None:
    """After the broker's own cleanup context, whose broker the signouts listen to."""

    async def signouts_ctx(app: web.Application) -> AsyncIterator[None]:
        broker = get_broker(app)
        signouts = app[_SIGNOUTS] = Signouts(broker)
        unsubscribe = broker.bus.subscribe(TECHNICIANS_TOPIC, signouts.changed,
                                           signouts.resync)
        yield
        unsubscribe()
        await signouts.close()

    app.cleanup_ctx.append(signouts_ctx)
