"""Who has a socket open to which session, and which technicians have a dashboard open.

`LocalRoster` counts this process's sockets: the single-node default. `SharedPresence`
counts them too, and keeps the cluster-wide truth in the database for several nodes:
each node has a row in `nodes` with a heartbeat, and a row in `node_sessions` (or
`node_dashboards`) while it has at least one socket of that role open, so a row is
written only when the first socket opens and deleted when the last closes. A node whose
heartbeat stopped for `node_timeout_seconds` is dead: its rows no longer count, and any
node's sweep starts the reconnect windows of the end users that were connected to it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .clock import Clock
from .handoff.presence import PresenceBoard
from .schema import node_dashboards, node_sessions, nodes
from .sessions.model import Role

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Dead:
    """Nodes found dead, and the sessions whose end users were connected to them."""

    nodes: tuple[str, ...]
    sessions: tuple[str, ...]


class LocalRoster:
    """Sockets open on this node; with one node that is everyone."""

    def __init__(self) -> None:
        self.board = PresenceBoard()
        self._counts: dict[str, collections.Counter[Role]] = {}

    async def start(self) -> list[str]:
        """Sessions whose end user was connected to this node before it (re)started."""
        return []

    async def close(self) -> None:
        pass

    async def arrive(self, session_id: str, role: Role) -> bool:
        """Count a socket in; True if it is this node's first of that role there."""
        counts = self._counts.setdefault(session_id, collections.Counter())
        counts[role] += 1
        if counts[role] != 1:
            return False
        await self._changed(session_id, role)
        return True

    async def depart(self, session_id: str, role: Role) -> bool:
        """Count a socket out; True if it was this node's last of that role there."""
        counts = self._counts.get(session_id)
        if counts is None or counts[role] <= 0:
            return False
        counts[role] -= 1
        if counts[role] > 0:
            return False
        if not +counts:
            del self._counts[session_id]
        await self._changed(session_id, role)
        return True

    async def present(self, session_id: str) -> frozenset[Role]:
        """Who has a socket open to the session."""
        return self._here(session_id)

    def _here(self, session_id: str) -> frozenset[Role]:
        counts = self._counts.get(session_id)
        return frozenset(role for role, n in counts.items() if n > 0) if counts else frozenset()

    async def dashboard_opened(self, technician_id: int) -> None:
        if self.board.arrive(technician_id):
            await self._dashboard_changed(technician_id)

    async def dashboard_closed(self, technician_id: int) -> None:
        if self.board.depart(technician_id):
            await self._dashboard_changed(technician_id)

    async def sweep_dead(self) -> Dead:
        """Forget nodes that died (none with one node)."""
        return Dead((), ())

    async def _changed(self, session_id: str, role: Role) -> None:
        pass

    async def _dashboard_changed(self, technician_id: int) -> None:
        pass


class SharedRoster(LocalRoster):
    """Presence across nodes, kept in the database (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, clock: Clock, node_id: str, address: str, *,
                 heartbeat_seconds: float, timeout_seconds: float) -> None:
        super().__init__()
        self._engine = engine
        self._clock = clock
        self.node_id = node_id
        self._address = address
        self._heartbeat = heartbeat_seconds
        self._timeout = timeout_seconds
        # Rows are written in the order of the changes, by one writer at a time, and each
        # write states what is true now (so a late write cannot undo a newer one).
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> list[str]:
        """Register this node. Its earlier run's rows are void (nobody is connected to a
        process that just started): returns the sessions whose end user was here."""
        now = self._clock.now()
        async with self._engine.begin() as conn:
            lost = list((await conn.scalars(sa.select(node_sessions.c.session_id).where(
                node_sessions.c.node_id == self.node_id,
                node_sessions.c.role == Role.END_USER.value))).all())
            await conn.execute(node_sessions.delete().where(
                node_sessions.c.node_id == self.node_id))
            await conn.execute(node_dashboards.delete().where(
                node_dashboards.c.node_id == self.node_id))
            await conn.execute(nodes.delete().where(nodes.c.id == self.node_id))
            await conn.execute(nodes.insert().values(
                id=self.node_id, address=self._address, started_at=now, seen_at=now))
        await self._refresh_remote()
        self._task = asyncio.create_task(self._beat_forever(), name="node-heartbeat")
        return lost

    async def close(self) -> None:
        """Leave the cluster: this node's rows go with it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        async with self._lock, self._engine.begin() as conn:
            await conn.execute(nodes.delete().where(nodes.c.id == self.node_id))

    async def present(self, session_id: str) -> frozenset[Role]:
        async with self._engine.connect() as conn:
            roles = (await conn.scalars(
                sa.select(node_sessions.c.role).distinct()
                .join(nodes, nodes.c.id == node_sessions.c.node_id)
                .where(node_sessions.c.session_id == session_id, self._alive()))).all()
        # This node's own sockets count even while the database lags behind.
        return frozenset(Role(role) for role in roles) | self._here(session_id)

    async def sweep_dead(self) -> Dead:
        """Forget nodes whose heartbeat stopped. Several nodes may sweep the same dead one:
        what follows from it must be idempotent."""
        cutoff = self._clock.now() - self._timeout
        async with self._engine.begin() as conn:
            dead = list((await conn.scalars(sa.select(nodes.c.id).where(
                nodes.c.seen_at < cutoff, nodes.c.id != self.node_id))).all())
            if not dead:
                return Dead((), ())
            lost = list((await conn.scalars(sa.select(node_sessions.c.session_id).distinct()
                                            .where(node_sessions.c.node_id.in_(dead),
                                                   node_sessions.c.role == Role.END_USER.value)
                                            )).all())
            await conn.execute(node_sessions.delete().where(node_sessions.c.node_id.in_(dead)))
            await conn.execute(node_dashboards.delete().where(
                node_dashboards.c.node_id.in_(dead)))
            await conn.execute(nodes.delete().where(nodes.c.id.in_(dead)))
        log.warning("broker nodes %s stopped sending heartbeats; %d end users were connected "
                    "to them", ", ".join(dead), len(lost))
        return Dead(tuple(dead), tuple(lost))

    async def beat(self) -> None:
        """One heartbeat. A node that was taken for dead (it stalled) writes its rows again."""
        async with self._lock, self._engine.begin() as conn:
            result = await conn.execute(nodes.update().where(nodes.c.id == self.node_id)
                                        .values(seen_at=self._clock.now()))
            if result.rowcount == 0:
                log.warning("this node was taken for dead; registering it again")
                now = self._clock.now()
                await conn.execute(nodes.insert().values(
                    id=self.node_id, address=self._address, started_at=now, seen_at=now))
                for session_id in list(self._counts):
                    for role in self._here(session_id):
                        await conn.execute(node_sessions.insert().values(
                            node_id=self.node_id, session_id=session_id, role=role.value))
                for technician_id in self.board.local_ids():
                    await conn.execute(node_dashboards.insert().values(
                        node_id=self.node_id, technician_id=technician_id))
        await self._refresh_remote()

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            try:
                await self.beat()
            except Exception:
                log.exception("heartbeat failed; trying again")

    async def _refresh_remote(self) -> None:
        async with self._engine.connect() as conn:
            ids = (await conn.scalars(
                sa.select(node_dashboards.c.technician_id).distinct()
                .join(nodes, nodes.c.id == node_dashboards.c.node_id)
                .where(self._alive(), nodes.c.id != self.node_id))).all()
        self.board.remote = frozenset(int(i) for i in ids)

    def _alive(self) -> sa.ColumnElement[bool]:
        return sa.or_(nodes.c.id == self.node_id,
                      nodes.c.seen_at >= self._clock.now() - self._timeout)

    async def _changed(self, session_id: str, role: Role) -> None:
        async with self._lock, self._engine.begin() as conn:
            await conn.execute(node_sessions.delete().where(
                node_sessions.c.node_id == self.node_id,
                node_sessions.c.session_id == session_id,
                node_sessions.c.role == role.value))
            if role in self._here(session_id):
                await conn.execute(node_sessions.insert().values(
                    node_id=self.node_id, session_id=session_id, role=role.value))

    async def _dashboard_changed(self, technician_id: int) -> None:
        async with self._lock, self._engine.begin() as conn:
            await conn.execute(node_dashboards.delete().where(
                node_dashboards.c.node_id == self.node_id,
                node_dashboards.c.technician_id == technician_id))
            if self.board.here(technician_id):
                await conn.execute(node_dashboards.insert().values(
                    node_id=self.node_id, technician_id=technician_id))
