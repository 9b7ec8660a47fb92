"""Prometheus figures of one broker node, served at ``/metrics``.

Counters count what *this node* did (sum them across nodes); ``broker_sessions`` is read
from the database (the session service counts) at each scrape, so every node reports the
same, cluster-wide figure (take ``max`` across nodes, not ``sum``). Each broker has its
own registry: nothing lives in prometheus-client's global default registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Bus lag is small on a healthy network; the upper buckets catch a struggling Redis.
# Any kind of state name: the session service counts by its SessionState.
_State = TypeVar("_State", bound=str)
_LAG_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The figures; services count into them, `/metrics` renders them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sessions = Gauge("broker_sessions", "Sessions by state (cluster-wide, from the "
                              "database)", ["state"], registry=r)
        self.sockets = Gauge("broker_sockets", "Open WebSockets on this node, by who holds "
                             "them", ["kind"], registry=r)
        self.messages = Counter("broker_messages", "Chat messages stored through this node",
                                registry=r)
        self.events = Counter("broker_events", "Session events stored by this node", registry=r)
        self.keys_issued = Counter("broker_keys_issued", "Support keys issued", registry=r)
        self.keys_redeemed = Counter("broker_keys_redeemed", "Support keys redeemed",
                                     registry=r)
        self.keys_refused = Counter("broker_keys_refused", "Key redemptions refused, by reason",
                                    ["reason"], registry=r)
        self.transfer_bytes = Counter("broker_transfer_bytes", "File bytes received from "
                                      "senders (in) and sent to downloaders (out)",
                                      ["direction"], registry=r)
        self.deliveries = Counter("broker_deliveries", "Key deliveries by SMS or email that "
                                  "reached a final status", ["channel", "status"], registry=r)
        self.bus_published = Counter("broker_bus_published", "Messages this node published to "
                                     "other nodes", registry=r)
        self.bus_received = Counter("broker_bus_received", "Messages this node received from "
                                    "other nodes", registry=r)
        self.bus_dropped = Counter("broker_bus_dropped", "Messages that could not be published "
                                   "(the bus was down); stored events are filled in from the "
                                   "database", registry=r)
        self.bus_reconnects = Counter("broker_bus_reconnects", "Times this node reconnected "
                                      "to the bus", registry=r)
        self.bus_lag = Histogram("broker_bus_lag_seconds", "From publishing on one node to "
                                 "receiving on this one", buckets=_LAG_BUCKETS, registry=r)
        for kind in ("technician", "end_user", "dashboard"):
            self.sockets.labels(kind).set(0)
        for direction in ("in", "out"):
            self.transfer_bytes.labels(direction)

    def count_sessions(self, counts: Mapping[_State, int]) -> None:
        """The figures that live in the database: sessions by state, every state."""
        for state, count in counts.items():
            self.sessions.labels(state).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
