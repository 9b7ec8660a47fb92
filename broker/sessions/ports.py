"""What the session domain needs from others, as protocols: it imports none of them.
broker/core.py and the other services plug their parts in."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from .model import Actor, Role


class Roster(Protocol):
    """Who has a socket open to a session, on any node (broker/nodes.py)."""

    async def present(self, session_id: str) -> frozenset[Role]: ...


class SessionEndHook(Protocol):
    """Another domain's part in a session's end (handoffs: no offer outlives its session),
    without this one knowing that domain or its tables."""

    async def session_ended(self, conn: AsyncConnection, session_id: str, now: float) -> None:
        """Called inside the transaction that ends the session: what the hook writes
        commits, or rolls back, with the end."""


class Candidacy(Protocol):
    """Who may read a session they are not in, to decide whether to take it (handoffs:
    the technicians it is offered to)."""

    async def offered_to(self, session_id: str, technician_id: int) -> bool: ...


class JournalObserver(Protocol):
    """Told of every event the journal stored for the first time (not of resends), in the
    task that appended it, after it is stored (the audit log, broker/audit)."""

    async def journal_stored(self, session_id: str, kind: str, data: dict[str, Any],
                             author: Actor | None) -> None: ...
