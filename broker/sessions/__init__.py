"""Support sessions: their states, their numbered events, and who may take part."""

from .journal import Journal, session_topic
from .model import Access, Actor, Event, Role, Session, SessionState, Signal, Takeover
from .ports import Candidacy, Roster, SessionEndHook
from .service import (
    ALL_SESSIONS_TOPIC,
    Redemption,
    SessionService,
    technician_topic,
)

__all__ = ["ALL_SESSIONS_TOPIC", "Access", "Actor", "Candidacy", "Event", "Journal",
           "Redemption", "Role", "Roster", "Session", "SessionEndHook", "SessionService",
           "SessionState", "Signal", "Takeover", "session_topic", "technician_topic"]
