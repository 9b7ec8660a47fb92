"""Support sessions: their states, their numbered events, and who may take part."""

from .journal import Journal, session_topic
from .model import Access, Actor, Event, Role, Session, SessionState, Signal, Takeover
from .service import (
    ALL_SESSIONS_TOPIC,
    Redemption,
    SessionService,
    technician_topic,
)

__all__ = ["ALL_SESSIONS_TOPIC", "Access", "Actor", "Event", "Journal", "Redemption", "Role",
           "Session", "SessionService", "SessionState", "Signal", "Takeover", "session_topic",
           "technician_topic"]
