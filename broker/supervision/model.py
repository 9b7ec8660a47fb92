"""What a supervisor oversees, and one line of their board."""

from __future__ import annotations

import dataclasses

from ..sessions import Session, SessionState

# Where a node asks every node who watches a session (broker/supervision/service.py).
WATCHERS_TOPIC = "supervision:watchers"


@dataclasses.dataclass(frozen=True, slots=True)
class Supervised:
    """Whose sessions a supervisor oversees: everyone's (an admin), or those owned by the
    members of the teams they lead."""

    everyone: bool
    team_ids: frozenset[int] = frozenset()
    technician_ids: frozenset[int] = frozenset()

    def covers(self, session: Session) -> bool:
        return self.everyone or (session.technician_id is not None
                                 and session.technician_id in self.technician_ids)


@dataclasses.dataclass(frozen=True, slots=True)
class BoardEntry:
    """A session on the board: the session, whether a screen is being shared in it now,
    and the seconds it waited for its end user and has run since (at `now`)."""

    session: Session
    sharing: bool
    now: float

    @property
    def live(self) -> bool:
        return self.session.state is not SessionState.ENDED

    @property
    def wait_seconds(self) -> float:
        """From the key to the end user joining (still counting while nobody joined)."""
        until = self.session.started_at
        if until is None:
            until = self.session.ended_at if self.session.ended_at is not None else self.now
        return max(0.0, until - self.session.created_at)

    @property
    def duration_seconds(self) -> float | None:
        """Since the end user joined (None before)."""
        if self.session.started_at is None:
            return None
        until = self.session.ended_at if self.session.ended_at is not None else self.now
        return max(0.0, until - self.session.started_at)


@dataclasses.dataclass(frozen=True, slots=True)
class WatchersAsked:
    """A participant (`sender`) opened a socket to the session: every node says to it who
    of its supervisors watches the session now (so that a reload loses nothing)."""

    session_id: str
    sender: str
    end_user: bool
