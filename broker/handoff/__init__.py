"""Moving sessions between technicians: teams, transfers, queues, collaboration, seats."""

from .logins import LoginStore
from .model import Access, Handoff, HandoffNotice, HandoffState, Presence, Team
from .presence import PresenceBoard
from .service import HandoffService
from .teams import TeamStore

__all__ = ["Access", "Handoff", "HandoffNotice", "HandoffService", "HandoffState",
           "LoginStore", "Presence", "PresenceBoard", "Team", "TeamStore"]
