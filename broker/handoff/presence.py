"""Which technicians have their dashboard open."""

from __future__ import annotations

import collections


class PresenceBoard:
    """Counts open dashboard sockets per technician (a technician may have several) on this
    node; with several nodes, `remote` holds those with a dashboard open elsewhere (see
    broker/nodes.py, which refreshes it with every heartbeat)."""

    def __init__(self) -> None:
        self._sockets: collections.Counter[int] = collections.Counter()
        self.remote: frozenset[int] = frozenset()

    def arrive(self, technician_id: int) -> bool:
        """Count one socket in; True if the technician just came online here."""
        self._sockets[technician_id] += 1
        return self._sockets[technician_id] == 1

    def depart(self, technician_id: int) -> bool:
        """Count one socket out; True if the technician just went offline here."""
        self._sockets[technician_id] -= 1
        if self._sockets[technician_id] <= 0:
            del self._sockets[technician_id]
            return True
        return False

    def here(self, technician_id: int) -> bool:
        """Has a dashboard open on this node."""
        return technician_id in self._sockets

    def online(self, technician_id: int) -> bool:
        return technician_id in self._sockets or technician_id in self.remote

    def online_ids(self) -> frozenset[int]:
        return frozenset(self._sockets) | self.remote

    def local_ids(self) -> frozenset[int]:
        return frozenset(self._sockets)
