"""Moving sessions between technicians: teams, transfers, queues, collaboration, seats."""

from .logins import LoginStore
from .model import Access, Availability, Handoff, HandoffNotice, HandoffState, Team
from .presence import PresenceBoard
from .service import HandoffService
from .teams import TeamStore

__all__ = ["Access", "Availability", "Handoff", "HandoffNotice", "HandoffService",
           "HandoffState", "LoginStore", "PresenceBoard", "Team", "TeamStore"]
