"""Who supervises whose sessions, the board of live sessions, and what a supervisor does
with one: watch it, join it as a collaborator, take it over (docs/supervision.md)."""

from __future__ import annotations

import contextlib
import secrets
from collections import Counter
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..audit import Action, AuditActor, AuditService
from ..audit.acts import TAKEN_OVER
from ..bus import EventBus
from ..clock import Clock
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..handoff import Handoff, HandoffService, HandoffState
from ..handoff import store as handoff_store
from ..handoff.service import MAX_NOTE, MAX_TECHNICIANS
from ..handoff.teams import TeamStore
from ..protocol.rtc import ShareState
from ..protocol.supervision import SupervisionNotice, SupervisorWatching
from ..schema import participants, sessions, shares
from ..sessions import Actor, Role, Session, SessionService, SessionState, Signal, session_topic
from ..sessions import store as session_store
from ..technicians import Technician
from .model import WATCHERS_TOPIC, BoardEntry, Supervised, WatchersAsked

_SHOWING = (ShareState.ACTIVE.value, ShareState.PAUSED.value)


class SupervisionService:
    """Admins supervise every session; a team lead the sessions owned by the members of
    the teams they lead. Everybody else supervises nothing."""

    def __init__(self, engine: AsyncEngine, teams: TeamStore, clock: Clock, bus: EventBus,
                 audit: AuditService, sessions: SessionService, handoffs: HandoffService, *,
                 tell_end_user: bool = False) -> None:
        self._engine = engine
        self._teams = teams
        self._clock = clock
        self._bus = bus
        self._audit = audit
        self._sessions = sessions
        self._handoffs = handoffs
        # The operator's setting supervision_tell_end_user: the end user learns of watches.
        self._tell_end_user = tell_end_user
        # The watch sockets open on this node: session -> supervisor -> how many.
        self._watches: dict[str, Counter[tuple[int, str]]] = {}

    async def watching(self, technician: Technician, session: Session, *,
                       started: bool) -> None:
        """A supervisor started or stopped watching the session: in the audit log, and
        said to the session's technicians (as they are now) on every node, and to its end
        user if the operator's setting says so."""
        await self._audit.record(Action.WATCH_STARTED if started else Action.WATCH_STOPPED,
                                 session_id=session.id, details={
                                     "supervisor": technician.display_name,
                                     "technician_id": session.technician_id},
                                 actor=AuditActor.technician(technician.id,
                                                             technician.display_name))
        watcher = (technician.id, technician.display_name)
        here = self._watches.setdefault(session.id, Counter())
        here[watcher] += 1 if started else -1
        if here[watcher] <= 0:
            del here[watcher]
        if not here:
            del self._watches[session.id]
        with contextlib.suppress(NotFound):  # joined or taken over meanwhile: as it is now
            session = await self._sessions.get(session.id)
        for technician_id in {session.technician_id, *session.collaborator_ids} - {
                None, technician.id}:
            self._tell(session.id, Actor(Role.TECHNICIAN, int(technician_id or 0), "").sender,
                       watcher, started)
        if self._tell_end_user:
            async with self._engine.connect() as conn:
                end_users = (await conn.scalars(sa.select(participants.c.id).where(
                    participants.c.session_id == session.id,
                    participants.c.role == Role.END_USER.value))).all()
            for participant_id in end_users:
                self._tell(session.id, Actor(Role.END_USER, participant_id, "").sender,
                           None, started)

    def _tell(self, session_id: str, sender: str, watcher: tuple[int, str] | None,
              started: bool) -> None:
        """One participant learns of one watch: a technician who watches (`watcher`), the
        end user only that somebody does (None)."""
        frame = (SupervisionNotice(started) if watcher is None else
                 SupervisorWatching({"id": watcher[0], "name": watcher[1]}, started))
        self._bus.publish(session_topic(session_id), Signal(session_id, frame, to=sender))

    def arrived(self, session_id: str, actor: Actor) -> None:
        """A participant opened a socket to the session (a first visit, a reload, a
        reconnect): every node tells them of the watches open there."""
        if actor.role is Role.TECHNICIAN or self._tell_end_user:
            self._bus.publish(WATCHERS_TOPIC, WatchersAsked(
                session_id, actor.sender, actor.role is Role.END_USER))

    def listen(self) -> Callable[[], None]:
        """Answer the question `arrived` asks, for the watches on this node, until the
        returned function is called."""
        return self._bus.subscribe(WATCHERS_TOPIC, self._asked)

    def _asked(self, message: object) -> None:
        if not isinstance(message, WatchersAsked):
            return
        for watcher, count in self._watches.get(message.session_id, Counter()).items():
            if message.end_user:  # the page counts the watches: one frame each
                for _ in range(count):
                    self._tell(message.session_id, message.sender, None, True)
            elif message.sender != Actor(Role.TECHNICIAN, watcher[0], "").sender:
                self._tell(message.session_id, message.sender, watcher, True)

    # -- joining and taking over -------------------------------------------------------------

    async def _supervised_session(self, technician: Technician, session_id: str) -> Session:
        """The live, owned session the technician supervises: else Forbidden (not a
        supervisor of it), NotFound, or Conflict (ended; a request still in a queue)."""
        scope = await self.require(technician)
        session = await self._sessions.get(session_id)
        if not scope.covers(session):
            raise Forbidden("This session is not one of your teams'.")
        if session.state is SessionState.ENDED:
            raise Conflict("This session has ended.", code="session_ended")
        if session.technician_id is None:
            raise Conflict("This request is waiting in a team's queue: take it from there.",
                           code="in_queue")
        return session

    async def join(self, technician: Technician, session_id: str) -> Session:
        """The supervisor joins the session as a collaborator, as if its owner had invited
        them; the journal's technician_joined (marked `supervisor`) is the audit record."""
        session = await self._supervised_session(technician, session_id)
        if technician.id == session.technician_id or technician.id in session.collaborator_ids:
            raise Conflict("You are in this session already.", code="already_present")
        if len(session.collaborator_ids) + 1 >= MAX_TECHNICIANS:
            raise Conflict(f"At most {MAX_TECHNICIANS} technicians can be in a session.",
                           code="session_full")
        async with self._engine.begin() as conn:
            await handoff_store.join(conn, session.id, technician.id, self._clock.now())
        await self._sessions.record(
            session.id, "technician_joined", {"name": technician.display_name,
                                              "supervisor": True},
            author=Actor(Role.TECHNICIAN, technician.id, technician.display_name))
        session = await self._sessions.get(session.id)
        self._sessions.announce(session, also=(technician.id,))
        return session

    async def take_over(self, technician: Technician, session_id: str, note: str, *,
                        keep_owner: bool = True) -> Session:
        """The supervisor owns the session now, as if its owner had handed it to them with
        `note` and they had accepted: an accepted handoff (reason `taken_over`) tells the
        old owner, who stays as a collaborator if `keep_owner`; transfers still waiting
        are cancelled; the end user sees the new name. Audited with the note."""
        session = await self._supervised_session(technician, session_id)
        note = note.strip()
        if not note:
            raise InvalidInput("Taking a session over needs a note for its technician.",
                               code="note_required")
        if len(note) > MAX_NOTE:
            raise InvalidInput(f"A note has at most {MAX_NOTE} characters.",
                               code="note_too_long")
        owner_id = session.technician_id or 0  # never 0: a session in a queue was refused
        if owner_id == technician.id:
            raise Conflict("This session is yours already.", code="own_session")
        now = self._clock.now()
        handoff = Handoff(secrets.token_urlsafe(12), session.id, owner_id, technician.id, None,
                          note, keep_owner, HandoffState.PENDING, now, None, None, None, None)
        async with self._engine.begin() as conn:
            cancelled = await handoff_store.pending_in(conn, session.id)
            for waiting in cancelled:
                await handoff_store.decide(conn, waiting, HandoffState.CANCELLED, technician.id,
                                           "Taken over by a supervisor", now)
            if not await handoff_store.move_owner(conn, session.id, owner_id, technician.id,
                                                  keep_owner, now):
                # Ended, or handed on, since it was read: nothing done.
                raise Conflict("The session changed meanwhile; look again.",
                               code="session_changed")
            await handoff_store.insert(conn, handoff)
            await handoff_store.decide(conn, handoff, HandoffState.ACCEPTED, technician.id,
                                       TAKEN_OVER, now)
        supervisor = Actor(Role.TECHNICIAN, technician.id, technician.display_name)
        await self._handoffs.new_owner(session.id, supervisor, "handed_over")
        details = {"from": session.technician_name or "", "from_id": owner_id,
                   "to": technician.display_name, "to_id": technician.id, "stays": keep_owner}
        await self._sessions.record(session.id, "handed_over", {**details, "reason": TAKEN_OVER},
                                    author=supervisor)
        await self._audit.record(Action.SUPERVISOR_TOOK_OVER, session_id=session.id,
                                 details={**details, "note": note},
                                 actor=AuditActor.technician(technician.id,
                                                             technician.display_name))
        for waiting in cancelled:
            await self._handoffs.announce(waiting.id)
        await self._handoffs.announce(handoff.id, extra=(owner_id,))
        return await self._sessions.get(session.id)

    async def supervised(self, technician: Technician) -> Supervised | None:
        """What the technician supervises, or None: not a supervisor."""
        if technician.is_admin:
            return Supervised(everyone=True)
        led = await self._teams.led_by(technician.id)
        if not led:
            return None
        return Supervised(
            everyone=False, team_ids=frozenset(team.id for team in led),
            technician_ids=frozenset(member for team in led for member in team.member_ids))

    async def require(self, technician: Technician) -> Supervised:
        found = await self.supervised(technician)
        if found is None:
            raise Forbidden("Only admins and team leads supervise sessions.")
        return found

    async def require_session(self, technician: Technician, session: Session) -> Supervised:
        """The technician supervises this session, or Forbidden."""
        found = await self.require(technician)
        if not found.covers(session):
            raise Forbidden("This session is not one of your teams'.")
        return found

    async def board(self, technician: Technician) -> list[BoardEntry]:
        """The live sessions the technician supervises, oldest first."""
        scope = await self.require(technician)
        query = session_store.session_query().where(
            sessions.c.state != SessionState.ENDED.value).order_by(sessions.c.created_at)
        if not scope.everyone:
            query = query.where(sessions.c.technician_id.in_(sorted(scope.technician_ids)))
        async with self._engine.connect() as conn:
            found = await session_store.load_all(conn, query)
            sharing = await self._sharing(conn, [session.id for session in found])
        now = self._clock.now()
        return [BoardEntry(session, session.id in sharing, now) for session in found]

    async def entry(self, session: Session) -> BoardEntry:
        """One session as the board shows it now."""
        async with self._engine.connect() as conn:
            sharing = await self._sharing(conn, [session.id])
        return BoardEntry(session, session.id in sharing, self._clock.now())

    @staticmethod
    async def _sharing(conn: AsyncConnection, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        rows = await conn.scalars(sa.select(shares.c.session_id).where(
            shares.c.live, shares.c.state.in_(_SHOWING), shares.c.session_id.in_(ids)))
        return set(rows.all())
