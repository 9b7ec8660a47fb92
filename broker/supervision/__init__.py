"""Supervisors: admins (every session) and team leads (their teams' sessions) see the live
sessions on a board, watch one, join it or take it over (docs/supervision.md)."""

from .model import WATCHERS_TOPIC, BoardEntry, Supervised, WatchersAsked
from .service import SupervisionService

__all__ = ["WATCHERS_TOPIC", "BoardEntry", "SupervisionService", "Supervised", "WatchersAsked"]
