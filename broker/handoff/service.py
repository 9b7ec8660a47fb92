"""Transfers between technicians, team queues, collaboration and orphaned sessions.

Ownership lives in one column (`sessions.technician_id`); a handoff moves it with one
conditional UPDATE on the handoff row, so of two technicians accepting the same transfer,
or picking the same queued session, exactly one wins. The end user's connection is not
touched: they get a `handed_over` event and see the new name. The note and the handoff
history are for technicians only and never reach the end user.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..bus import EventBus
from ..clock import Clock
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..schema import session_technicians, sessions
from ..sessions import (
    ALL_SESSIONS_TOPIC,
    Access,
    Actor,
    Role,
    Session,
    SessionService,
    SessionState,
    technician_topic,
)
from ..settings import Settings
from ..technicians import Technician, TechnicianStore
from . import store
from .logins import LoginStore
from .model import Availability, Handoff, HandoffNotice, HandoffState, Team
from .orphans import Orphans
from .presence import PresenceBoard
from .teams import TeamStore

NewOwnerHook = Callable[[str, Actor, str], Awaitable[None]]
AcceptHook = Callable[[Handoff], Awaitable[None]]
MAX_TECHNICIANS = 4  # per session, the owner included (as GoTo Resolve allows)
MAX_NOTE = 2000


class HandoffService:
    """Who has a session and who is offered it. Takes part in every session's end and in
    its access checks through the hooks SessionService offers (it registers itself)."""

    def __init__(self, settings: Settings, engine: AsyncEngine, sessions: SessionService,
                 technicians: TechnicianStore, teams: TeamStore, logins: LoginStore,
                 presence: PresenceBoard, bus: EventBus, clock: Clock,
                 on_new_owner: NewOwnerHook | None = None) -> None:
        self._settings = settings
        self._engine = engine
        self._sessions = sessions
        self._technicians = technicians
        self._teams = teams
        self._logins = logins
        self._presence = presence
        self._bus = bus
        self._clock = clock
        # Called when a session gets a new owner, before they act: screen shares end.
        self._on_new_owner = on_new_owner
        self._accept_hooks: list[AcceptHook] = []
        sessions.on_end(self)
        sessions.candidates_from(self)
        self.orphans = Orphans(settings, engine, sessions, technicians, teams, logins,
                               presence, clock, self)

    # -- who is there ----------------------------------------------------------------------

    async def roster(self) -> list[tuple[Technician, Availability, list[str]]]:
        """Every technician with presence and team names, online ones first."""
        teams = await self._teams.all()
        logged_in = {login.technician_id for login in await self._logins.active()}
        order = {Availability.ONLINE: 0, Availability.AWAY: 1, Availability.OFFLINE: 2}
        result = []
        for technician in await self._technicians.all():
            names = [team.name for team in teams if technician.id in team.member_ids]
            availability = (
                Availability.ONLINE if self._presence.online(technician.id)
                else Availability.AWAY if technician.id in logged_in else Availability.OFFLINE)
            result.append((technician, availability, names))
        return sorted(result, key=lambda item: (order[item[1]], item[0].display_name.lower()))

    # -- transfers and queues ----------------------------------------------------------------

    async def transfer(self, session_id: str, sender: Technician, *, note: str,
                       to_technician_id: int | None = None, to_team_id: int | None = None,
                       keep_sender: bool = False) -> Handoff:
        """Offer the session to a technician, or put it in a team's queue, with a note."""
        session = await self._sessions.for_technician(session_id, sender, Access.OWNER)
        note = note.strip()
        if not note:
            raise InvalidInput("A transfer needs a note for the receiver.", code="note_required")
        if len(note) > MAX_NOTE:
            raise InvalidInput(f"A note has at most {MAX_NOTE} characters.")
        if (to_technician_id is None) == (to_team_id is None):
            raise InvalidInput("Transfer to a technician or to a team queue.",
                               code="invalid_target")
        if session.state is SessionState.ENDED:
            raise Conflict("This session has ended.", code="session_ended")
        if to_technician_id is not None:
            target = await self._technicians.get(to_technician_id)
            if target.disabled:
                raise InvalidInput("That technician is disabled.", code="invalid_target")
            if target.id == session.technician_id:
                raise InvalidInput("That technician already owns the session.",
                                   code="invalid_target")
        if to_team_id is not None:
            await self._teams.get(to_team_id)
        now = self._clock.now()
        handoff = Handoff(secrets.token_urlsafe(12), session_id, session.technician_id,
                          to_technician_id, to_team_id, note, keep_sender, HandoffState.PENDING,
                          now, now + self._settings.handoff_timeout_seconds, None, None, None)
        async with self._engine.begin() as conn:
            if await store.pending_in(conn, session_id):
                raise Conflict("A transfer of this session is already waiting for an answer.",
                               code="handoff_pending")
            await store.insert(conn, handoff)
            if to_team_id is not None:
                await conn.execute(sessions.update().where(sessions.c.id == session_id).values(
                    queue_team_id=to_team_id, last_queue_team_id=to_team_id))
        return await self.announce(handoff.id)

    async def enqueue(self, session_id: str, team_id: int, note: str) -> Handoff:
        """Put a session nobody owns yet (a customer's request, broker/intake) in a team's
        queue, where its members pick it up as any queued session; it waits until one
        does or the session ends."""
        await self._teams.get(team_id)
        handoff = Handoff(secrets.token_urlsafe(12), session_id, None, None, team_id,
                          note[:MAX_NOTE], False, HandoffState.PENDING, self._clock.now(),
                          None, None, None, None)
        async with self._engine.begin() as conn:
            await store.insert(conn, handoff)
            await conn.execute(sessions.update().where(sessions.c.id == session_id).values(
                queue_team_id=team_id, last_queue_team_id=team_id))
        return await self.announce(handoff.id)

    def on_accept(self, hook: AcceptHook) -> None:
        """Call `hook` with each handoff accepted, once its new owner has the session."""
        self._accept_hooks.append(hook)

    async def get(self, handoff_id: str) -> Handoff:
        async with self._engine.connect() as conn:
            handoff = await store.get(conn, handoff_id)
        if handoff is None:
            raise NotFound("No such transfer.")
        return handoff

    async def _may_receive(self, handoff: Handoff, technician: Technician) -> bool:
        if handoff.to_technician_id is not None:
            return handoff.to_technician_id == technician.id
        team = await self._teams.get(handoff.to_team_id or 0)
        return technician.id in team.member_ids or technician.is_admin

    async def accept(self, handoff_id: str, technician: Technician) -> Session:
        """Take the session over; exactly one of several racing receivers wins."""
        handoff = await self.get(handoff_id)
        if not await self._may_receive(handoff, technician):
            raise Forbidden("This transfer is for someone else.")
        now = self._clock.now()
        async with self._engine.begin() as conn:
            won = await self._decide(conn, handoff, HandoffState.ACCEPTED, technician.id)
            if not won:
                raise Conflict("Someone else has answered this transfer already.",
                               code="handoff_taken")
            await conn.execute(sessions.update().where(sessions.c.id == handoff.session_id)
                               .values(technician_id=technician.id, queue_team_id=None))
            # The new owner is no collaborator any more; the sender may stay as one.
            await conn.execute(session_technicians.delete().where(
                session_technicians.c.session_id == handoff.session_id,
                session_technicians.c.technician_id == technician.id))
            if handoff.keep_sender and handoff.from_technician_id is not None:
                await store.join(conn, handoff.session_id, handoff.from_technician_id, now)
        # A customer's request comes from nobody: from the queue it waited in.
        sender = (await self._technicians.get(handoff.from_technician_id)).display_name \
            if handoff.from_technician_id is not None \
            else (await self._teams.get(handoff.to_team_id or 0)).name
        new_owner = Actor(Role.TECHNICIAN, technician.id, technician.display_name)
        await self.new_owner(handoff.session_id, new_owner, "handed_over")
        await self._sessions.record(
            handoff.session_id, "handed_over",
            {"from": sender, "to": technician.display_name,
             "from_id": handoff.from_technician_id, "to_id": technician.id,
             "stays": handoff.keep_sender}, author=new_owner)
        await self.announce(handoff_id, extra=(handoff.from_technician_id,))
        for hook in self._accept_hooks:
            await hook(handoff)
        return await self._sessions.get(handoff.session_id)

    async def decline(self, handoff_id: str, technician: Technician, reason: str) -> Handoff:
        handoff = await self.get(handoff_id)
        if handoff.to_technician_id != technician.id:
            raise Forbidden("Only the technician it was offered to can decline a transfer.")
        async with self._engine.begin() as conn:
            if not await self._decide(conn, handoff, HandoffState.DECLINED, technician.id,
                                      reason.strip()[:500] or "Declined"):
                raise Conflict("This transfer was answered already.", code="handoff_taken")
        return await self.announce(handoff_id)

    async def cancel(self, handoff_id: str, technician: Technician) -> Handoff:
        handoff = await self.get(handoff_id)
        session = await self._sessions.get(handoff.session_id)
        if await self._sessions.access(session, technician) < Access.OWNER:
            raise Forbidden("Only the session's owner can take a transfer back.")
        async with self._engine.begin() as conn:
            if not await self._decide(conn, handoff, HandoffState.CANCELLED, technician.id,
                                      "Taken back"):
                raise Conflict("This transfer was answered already.", code="handoff_taken")
        return await self.announce(handoff_id)

    async def expire_due(self) -> int:
        """No answer in time: the session stays with (goes back to) its sender."""
        async with self._engine.connect() as conn:
            due = await store.pending_due(conn, self._clock.now())
        expired = 0
        minutes = self._settings.handoff_timeout_seconds / 60
        for handoff in due:
            async with self._engine.begin() as conn:
                if await self._decide(conn, handoff, HandoffState.EXPIRED, None,
                                      f"Nobody accepted within {minutes:g} minutes"):
                    expired += 1
            await self.announce(handoff.id)
        return expired

    async def _decide(self, conn: AsyncConnection, handoff: Handoff, state: HandoffState,
                      by: int | None, reason: str | None = None) -> bool:
        return await store.decide(conn, handoff, state, by, reason, self._clock.now())

    # -- hooks of the session service --------------------------------------------------------

    async def session_ended(self, conn: AsyncConnection, session_id: str, now: float) -> None:
        """Nobody can take over an ended session: its pending handoffs are cancelled in the
        transaction that ends it (it leaves its queue with them)."""
        for handoff in await store.pending_in(conn, session_id):
            await store.decide(conn, handoff, HandoffState.CANCELLED, None,
                               "The session ended", now)

    async def offered_to(self, session_id: str, technician_id: int) -> bool:
        """Whether the session is offered to the technician, directly or in a queue of one
        of their teams (that makes them a candidate: they may read it)."""
        async with self._engine.connect() as conn:
            return await store.offered(conn, session_id, technician_id)

    async def pending_for(self, technician: Technician) -> list[Handoff]:
        """Transfers offered to this technician, and sessions waiting in their teams' queues."""
        team_ids = [team.id for team in await self._teams.of(technician.id)]
        async with self._engine.connect() as conn:
            return await store.pending_for(conn, technician.id, team_ids)

    async def queues(self, technician: Technician) -> list[tuple[Team, list[Handoff]]]:
        """Each of the technician's teams (admins: every team) with its waiting sessions,
        longest waiting first."""
        teams = await (self._teams.all() if technician.is_admin
                       else self._teams.of(technician.id))
        async with self._engine.connect() as conn:
            waiting = await store.queued(conn)
        return [(team, [h for h in waiting if h.to_team_id == team.id]) for team in teams]

    async def history(self, session_id: str) -> list[Handoff]:
        async with self._engine.connect() as conn:
            return await store.history(conn, session_id)

    async def notice(self, handoff: Handoff, *, session: Session | None = None,
                     team: Team | None = None) -> HandoffNotice:
        """The handoff with the names of those involved (`session` and `team`, when the
        caller has them already, save reading them again)."""
        if session is None:
            session = await self._sessions.get(handoff.session_id)
        sender = (await self._technicians.get(handoff.from_technician_id)).display_name \
            if handoff.from_technician_id is not None else session.end_user_name or ""
        receiver = (await self._technicians.get(handoff.to_technician_id)
                    if handoff.to_technician_id is not None else None)
        if team is None and handoff.to_team_id is not None:
            team = await self._teams.get(handoff.to_team_id)
        decider = (await self._technicians.get(handoff.decided_by)
                   if handoff.decided_by is not None else None)
        return HandoffNotice(handoff, sender,
                             receiver.display_name if receiver else None,
                             team.name if team else None, session.end_user_name,
                             session.state.value, decider.display_name if decider else None)

    async def new_owner(self, session_id: str, owner: Actor, reason: str) -> None:
        """Tell the hook (screen shares end) that `owner` now has the session."""
        if self._on_new_owner is not None:
            await self._on_new_owner(session_id, owner, reason)

    async def announce(self, handoff_id: str, extra: tuple[int | None, ...] = ()) -> Handoff:
        """Tell everyone concerned: the sender, the receiver or the team, admins."""
        handoff = await self.get(handoff_id)
        told = {i for i in (handoff.from_technician_id, *extra) if i is not None}
        if handoff.to_technician_id is not None:
            told.add(handoff.to_technician_id)
        team = None
        if handoff.to_team_id is not None:
            team = await self._teams.get(handoff.to_team_id)
            told.update(team.member_ids)
        session = await self._sessions.get(handoff.session_id)
        notice = await self.notice(handoff, session=session, team=team)
        for technician_id in told:
            self._bus.publish(technician_topic(technician_id), notice)
        self._bus.publish(ALL_SESSIONS_TOPIC, notice)
        # The session itself goes only to those who have it (owner, sender); a candidate
        # sees the offer, not a session in their list.
        self._sessions.announce(session, also=tuple(
            i for i in (handoff.from_technician_id, *extra) if i is not None))
        return handoff

    # -- collaboration -----------------------------------------------------------------------

    async def invite(self, session_id: str, owner: Technician, technician_id: int) -> Session:
        session = await self._sessions.for_technician(session_id, owner, Access.OWNER)
        if session.state is SessionState.ENDED:
            raise Conflict("This session has ended.", code="session_ended")
        guest = await self._technicians.get(technician_id)
        if guest.disabled:
            raise InvalidInput("That technician is disabled.", code="invalid_target")
        present = await self.technicians_in(session_id)
        if guest.id == session.technician_id or guest.id in present:
            raise Conflict(f"{guest.display_name} is in this session already.",
                           code="already_present")
        if len(present) + 1 >= MAX_TECHNICIANS:
            raise Conflict(f"At most {MAX_TECHNICIANS} technicians can be in a session.",
                           code="session_full")
        async with self._engine.begin() as conn:
            await store.join(conn, session_id, guest.id, self._clock.now())
        await self._sessions.record(session_id, "technician_joined",
                                    {"name": guest.display_name},
                                    author=Actor(Role.TECHNICIAN, owner.id, owner.display_name))
        session = await self._sessions.get(session_id)
        self._sessions.announce(session, also=(guest.id,))
        return session

    async def leave(self, session_id: str, technician: Technician) -> None:
        """A collaborator leaves the session (the owner hands it over instead)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(session_technicians.update().where(
                session_technicians.c.session_id == session_id,
                session_technicians.c.technician_id == technician.id,
                session_technicians.c.left_at.is_(None)).values(left_at=self._clock.now()))
        if result.rowcount != 1:
            raise Conflict("You are not a collaborator in this session.", code="not_present")
        await self._sessions.record(
            session_id, "technician_left", {"name": technician.display_name,
                                            "id": technician.id},
            author=Actor(Role.TECHNICIAN, technician.id, technician.display_name))
        self._sessions.announce(await self._sessions.get(session_id), also=(technician.id,))

    async def technicians_in(self, session_id: str) -> list[int]:
        """Collaborators present now, longest present first (the owner not included)."""
        async with self._engine.connect() as conn:
            return list((await conn.scalars(sa.select(session_technicians.c.technician_id)
                         .where(session_technicians.c.session_id == session_id,
                                session_technicians.c.left_at.is_(None))
                         .order_by(session_technicians.c.joined_at))).all())

