"""The shares of running sessions: who may change them, and how a change is stored.

Any node serves either peer of any share: a share lives in the database (broker/rtc/store.py),
not in the memory of the node where it was asked for.

Changes (request, consent, start, pause, resume, stop, remote control) are decided once: a
node reads the share's row, checks the move against the transition tables, stores it with
a conditional update on the row's version (of two nodes making conflicting moves at once,
one wins; the other gets `share_changed`), and then stores the move as a session event
through the journal (so it has a sequence number and reaches both pages, also after a
reconnect). While it does, it holds the session's turn: a lock per session on this node
and, on PostgreSQL, an advisory lock until the events are stored, so the events of a
session's shares are numbered in the order the moves were made.

Signaling between the peers is not stored: see broker/rtc/signaling.py.

Shares outlive a restart of the broker: the pages reconnect, say `rtc.ready` again and
go on (media flows between the peers, not through the broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import weakref
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..clock import Clock
from ..errors import Conflict, Forbidden, InvalidInput
from ..sessions import Actor, Journal, Role, SessionState
from . import store
from .model import SHARE_ID, ControlState, Direction, Peer, Share, ShareState, Source
from .store import Stored, peer_of

_REASON = re.compile(r"^[a-z_]{1,32}$")
_Events = list[tuple[str, dict[str, Any] | None]]


class ShareService:
    """Screen shares of the sessions, for any node. Knows nothing of HTTP."""

    def __init__(self, engine: AsyncEngine, journal: Journal, clock: Clock) -> None:
        self._engine = engine
        self._journal = journal
        self._clock = clock
        # A lock per session while someone waits for it (see _turn).
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary())

    # -- the share's life (stored events) -----------------------------------------------

    async def request(self, session_id: str, actor: Actor, share_id: str,
                      direction: str = Direction.END_USER_TO_TECHNICIAN.value,
                      source: str = Source.BROWSER.value) -> Share:
        """A technician asks to see the end user's screen, or starts showing their own."""
        if actor.role is not Role.TECHNICIAN:
            raise Forbidden("Only the technician starts screen sharing.",
                            code="technician_only")
        try:
            way, kind = Direction(direction), Source(source)
        except ValueError as exc:
            raise InvalidInput("direction must be end_user_to_technician or "
                               "technician_to_end_user, source browser or agent") from exc
        if not SHARE_ID.match(share_id):
            raise InvalidInput("A share id has 1 to 64 letters, digits, '-' or '_'.")
        if kind is Source.AGENT and way is not Direction.END_USER_TO_TECHNICIAN:
            raise InvalidInput("The agent only shares the end user's screen.")
        async with self._turn(session_id):
            # Another node may have let the end user in: ask the database.
            state = await self._journal.state(session_id, fresh=True)
            if state is SessionState.ENDED:
                raise Conflict("This session has ended.", code="session_ended")
            async with self._engine.connect() as conn:
                end_user = await store.end_user(conn, session_id)
                if state is SessionState.WAITING or end_user is None:
                    raise Conflict("Nobody has joined the session yet.",
                                   code="session_waiting")
                _check_free(*await store.taken(conn, session_id, share_id))
                agent = await store.agent_of(conn, session_id)
                if kind is Source.AGENT:
                    if agent is None:
                        raise Conflict("The end user's support agent has not joined this "
                                       "session.", code="no_agent")
                    end_user = agent
                elif agent is not None and end_user.sender == agent.sender:
                    # The browser shares: its participant, not the agent's (unless the
                    # agent is the only end-user participant, which then shares itself).
                    end_user = await store.end_user(conn, session_id,
                                                    besides=end_user.sender) or end_user
            technician = Peer.of(actor)
            if way is Direction.END_USER_TO_TECHNICIAN:
                share = Share(session_id, share_id, way, kind, end_user, technician)
            else:
                share = Share(session_id, share_id, way, kind, technician, end_user)
            try:
                async with self._engine.begin() as conn:
                    await store.insert(conn, share, self._clock.now())
            except sa.exc.IntegrityError:
                # Another node made one first (the database decides): say which.
                async with self._engine.connect() as conn:
                    _check_free(*await store.taken(conn, session_id, share_id))
                raise
            if way is Direction.END_USER_TO_TECHNICIAN:
                try:
                    await self._record(share, "share.requested", actor)
                except BaseException:
                    async with self._engine.begin() as conn:
                        await store.delete(conn, share)
                    raise
            return share

    async def consent(self, session_id: str, actor: Actor, share_id: str,
                      accept: bool) -> Share:
        """The sharing side accepts or refuses a request."""
        async with self._turn(session_id):
            stored = await self._stored(session_id, share_id, actor)
            if actor.sender != stored.share.sharer.sender:
                raise Forbidden("Only the one whose screen it is answers a request.",
                                code="wrong_peer")
            if accept:
                await self._change(stored, ShareState.CONSENTED, "share.consented", actor)
            else:
                await self._change(stored, ShareState.REFUSED, "share.refused", actor)
            return stored.share

    async def start(self, session_id: str, actor: Actor, share_id: str) -> Share:
        """The sharing side has captured its screen."""
        async with self._turn(session_id):
            stored = await self._stored(session_id, share_id, actor)
            if actor.sender != stored.share.sharer.sender:
                raise Forbidden("Only the sharing side starts the share.", code="wrong_peer")
            await self._change(stored, ShareState.ACTIVE, "share.started", actor)
            return stored.share

    async def pause(self, session_id: str, actor: Actor, share_id: str) -> Share:
        async with self._turn(session_id):
            stored = await self._stored(session_id, share_id, actor)
            await self._change(stored, ShareState.PAUSED, "share.paused", actor)
            return stored.share

    async def resume(self, session_id: str, actor: Actor, share_id: str) -> Share:
        """The sharing side resumes any pause; the viewer only its own."""
        async with self._turn(session_id):
            stored = await self._stored(session_id, share_id, actor)
            share = stored.share
            if (share.state is ShareState.PAUSED and actor.sender != share.sharer.sender
                    and actor.sender != share.paused_by):
                raise Forbidden("The sharing side paused; only they can resume.",
                                code="wrong_peer")
            await self._change(stored, ShareState.ACTIVE, "share.resumed", actor)
            return share

    async def stop(self, session_id: str, actor: Actor, share_id: str,
                   reason: str = "stopped") -> Share:
        """Either peer ends the share, in any live state."""
        async with self._turn(session_id):
            stored = await self._stored(session_id, share_id, actor)
            reason = reason if _REASON.match(reason) else "stopped"
            await self._change(stored, ShareState.STOPPED, "share.stopped", actor,
                               {"reason": reason})
            return stored.share

    async def stop_all(self, session_id: str, by: Actor, reason: str) -> None:
        """End every live share of the session, e.g. when it is handed to another
        technician: consent to see or control a screen does not pass to the new owner."""
        async with self._turn(session_id):
            async with self._engine.connect() as conn:
                found = await store.live(conn, session_id)
            for stored in found:
                await self._change(stored, ShareState.STOPPED, "share.stopped", by,
                                   {"reason": reason})

    # -- remote control of an agent share (stored events) --------------------------------

    async def request_control(self, session_id: str, actor: Actor, share_id: str) -> Share:
        """The viewer of an agent share asks to control the shared computer."""
        async with self._turn(session_id):
            stored = await self._stored(session_id, share_id, actor)
            share = stored.share
            if actor.sender != share.viewer.sender:
                raise Forbidden("Only the viewer asks for control.", code="wrong_peer")
            self._check_controllable(share)
            share.set_control(ControlState.REQUESTED)
            await self._store(stored, actor, [("control.requested", None)])
            return share

    async def answer_control(self, session_id: str, actor: Actor, share_id: str,
                             accept: bool) -> Share:
        """The person at the shared computer (through the agent) grants or refuses."""
        async with self._turn(session_id):
            stored = await self._stored(session_id, share_id, actor)
            share = stored.share
            if actor.sender != share.sharer.sender:
                raise Forbidden("Only the one whose computer it is grants control.",
                                code="wrong_peer")
            self._check_controllable(share)
            if accept:
                share.set_control(ControlState.GRANTED)
                await self._store(stored, actor, [("control.granted", None)])
            else:
                share.set_control(ControlState.NONE)
                await self._store(stored, actor, [("control.refused", None)])
            return share

    async def stop_control(self, session_id: str, actor: Actor, share_id: str,
                           reason: str = "stopped") -> Share:
        """Either peer ends control, or withdraws a request for it."""
        async with self._turn(session_id):
            stored = await self._stored(session_id, share_id, actor)
            share = stored.share
            if not share.state.live:
                raise Conflict("This share has ended.", code="share_ended")
            share.set_control(ControlState.NONE)
            await self._store(stored, actor, [
                ("control.stopped", {"reason": reason if _REASON.match(reason) else "stopped"})])
            return share

    def _check_controllable(self, share: Share) -> None:
        if not share.state.live:
            raise Conflict("This share has ended.", code="share_ended")
        if share.source is not Source.AGENT:
            raise Conflict("Remote control needs the support agent on the end user's "
                           "computer.", code="control_unavailable")
        if share.state is ShareState.REQUESTED:
            raise Conflict("The screen's owner has not agreed to share it yet.",
                           code="share_not_consented")

    # -- inside ---------------------------------------------------------------------------

    async def _stored(self, session_id: str, share_id: str, actor: Actor) -> Stored:
        async with self._engine.connect() as conn:
            return peer_of(await store.load(conn, session_id, share_id), actor)

    async def _change(self, stored: Stored, new: ShareState, event_type: str, actor: Actor,
                      extra: dict[str, Any] | None = None) -> None:
        share = stored.share
        if not share.state.live:
            raise Conflict("This share has ended.", code="share_ended")
        changes: _Events = []
        if not new.live and share.control is not ControlState.NONE:
            # Control ends with the share; said explicitly, for the pages and the transcript.
            share.set_control(ControlState.NONE)
            changes.append(("control.stopped", {"reason": "share_stopped"}))
        share.set_state(new, by=actor.sender)
        changes.append((event_type, extra))
        await self._store(stored, actor, changes)

    async def _store(self, stored: Stored, actor: Actor, changes: _Events) -> None:
        """Store the share's new state if nobody changed it meanwhile, then its events."""
        share = stored.share
        async with self._engine.begin() as conn:
            if not await store.save(conn, share, stored.version, self._clock.now()):
                raise Conflict("The share was changed meanwhile; look at its latest event "
                               "and try again.", code="share_changed")
        stored.version += 1
        recorded = False
        try:
            for event_type, extra in changes:
                await self._record(share, event_type, actor, extra)
                recorded = True
        except BaseException:
            if not recorded:
                # As if it never happened (say, the session ended meanwhile).
                undone = Share.restore(share.session_id, share.id, share.direction,
                                       share.source, share.sharer, share.viewer,
                                       *stored.before)
                async with self._engine.begin() as conn:
                    await store.save(conn, undone, stored.version, self._clock.now())
            raise

    async def _record(self, share: Share, event_type: str, actor: Actor,
                      extra: dict[str, Any] | None = None) -> None:
        await self._journal.append(share.session_id, event_type,
                                   {**share.public(), **(extra or {})}, author=actor)

    @contextlib.asynccontextmanager
    async def _turn(self, session_id: str) -> AsyncIterator[None]:
        """One change of a session's shares at a time, on every node: a lock per session
        here and, on PostgreSQL, an advisory lock held until the change's events are
        stored, so they are numbered in the order of the changes."""
        lock = self._locks.get(session_id)
        if lock is None:
            lock = self._locks[session_id] = asyncio.Lock()
        async with lock:
            if self._engine.dialect.name != "postgresql":
                yield  # one node (SQLite): the lock is all
            else:
                async with self._engine.begin() as conn:
                    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(
                        _lock_key(session_id))))
                    yield


def _lock_key(session_id: str) -> int:
    digest = hashlib.blake2b(f"shares:{session_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _check_free(taken: bool, busy: bool) -> None:
    if taken:
        raise Conflict("A share with this id exists already.", code="share_exists")
    if busy:
        raise Conflict("A screen is already being shared in this session; stop it first.",
                       code="share_busy")

