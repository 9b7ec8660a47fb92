"""Transfers between technicians, team queues, collaboration, notes and orphaned sessions.

Ownership lives in one column (`sessions.technician_id`); a handoff moves it with one
conditional UPDATE on the handoff row, so of two technicians accepting the same transfer,
or picking the same queued session, exactly one wins. The end user's connection is not
touched: they get a `handed_over` event and see the new name. The note and the handoff
history are for technicians only and never reach the end user.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..bus import EventBus
from ..clock import Clock
from ..db import handoffs, session_technicians, sessions
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
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
from .logins import LoginStore
from .model import Handoff, HandoffNotice, HandoffState, Presence, Team
from .presence import PresenceBoard
from .teams import TeamStore

NewOwnerHook = Callable[[str, Actor, str], Awaitable[None]]
MAX_TECHNICIANS = 4  # per session, the owner included (as GoTo Resolve allows)
MAX_NOTE = 2000
MAX_NOTES = 20_000


class HandoffService:
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

    # -- who is there ----------------------------------------------------------------------

    async def roster(self) -> list[tuple[Technician, Presence, list[str]]]:
        """Every technician with presence and team names, online ones first."""
        teams = await self._teams.all()
        logged_in = {login.technician_id for login in await self._logins.active()}
        order = {Presence.ONLINE: 0, Presence.AWAY: 1, Presence.OFFLINE: 2}
        result = []
        for technician in await self._technicians.all():
            names = [team.name for team in teams if technician.id in team.member_ids]
            presence = (Presence.ONLINE if self._presence.online(technician.id)
                        else Presence.AWAY if technician.id in logged_in else Presence.OFFLINE)
            result.append((technician, presence, names))
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
            if target.id == session.technician_id:
                raise InvalidInput("That technician already owns the session.",
                                   code="invalid_target")
        if to_team_id is not None:
            await self._teams.get(to_team_id)
        now = self._clock.now()
        handoff_id = secrets.token_urlsafe(12)
        async with self._engine.begin() as conn:
            if await conn.scalar(sa.select(handoffs.c.id).where(
                    handoffs.c.session_id == session_id, handoffs.c.state == "pending")):
                raise Conflict("A transfer of this session is already waiting for an answer.",
                               code="handoff_pending")
            await conn.execute(handoffs.insert().values(
                id=handoff_id, session_id=session_id, from_technician_id=session.technician_id,
                to_technician_id=to_technician_id, to_team_id=to_team_id, note=note,
                keep_sender=keep_sender, state=HandoffState.PENDING.value, created_at=now,
                deadline=now + self._settings.handoff_timeout_seconds))
            if to_team_id is not None:
                await conn.execute(sessions.update().where(sessions.c.id == session_id).values(
                    queue_team_id=to_team_id, last_queue_team_id=to_team_id))
        return await self._announce(handoff_id)

    async def get(self, handoff_id: str) -> Handoff:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(handoffs).where(handoffs.c.id == handoff_id))
                   ).first()
        if row is None:
            raise NotFound("No such transfer.")
        return Handoff.from_row(row)

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
            if handoff.keep_sender:
                await _join(conn, handoff.session_id, handoff.from_technician_id, now)
        sender = await self._technicians.get(handoff.from_technician_id)
        new_owner = Actor(Role.TECHNICIAN, technician.id, technician.display_name)
        if self._on_new_owner is not None:
            await self._on_new_owner(handoff.session_id, new_owner, "handed_over")
        await self._sessions.record(
            handoff.session_id, "handed_over",
            {"from": sender.display_name, "to": technician.display_name,
             "from_id": sender.id, "to_id": technician.id, "stays": handoff.keep_sender},
            author=new_owner)
        await self._announce(handoff_id, extra=(handoff.from_technician_id,))
        return await self._sessions.get(handoff.session_id)

    async def decline(self, handoff_id: str, technician: Technician, reason: str) -> Handoff:
        handoff = await self.get(handoff_id)
        if handoff.to_technician_id != technician.id:
            raise Forbidden("Only the technician it was offered to can decline a transfer.")
        async with self._engine.begin() as conn:
            if not await self._decide(conn, handoff, HandoffState.DECLINED, technician.id,
                                      reason.strip()[:500] or "Declined"):
                raise Conflict("This transfer was answered already.", code="handoff_taken")
        return await self._announce(handoff_id)

    async def cancel(self, handoff_id: str, technician: Technician) -> Handoff:
        handoff = await self.get(handoff_id)
        session = await self._sessions.get(handoff.session_id)
        if await self._sessions.access(session, technician) < Access.OWNER:
            raise Forbidden("Only the session's owner can take a transfer back.")
        async with self._engine.begin() as conn:
            if not await self._decide(conn, handoff, HandoffState.CANCELLED, technician.id,
                                      "Taken back"):
                raise Conflict("This transfer was answered already.", code="handoff_taken")
        return await self._announce(handoff_id)

    async def expire_due(self) -> int:
        """No answer in time: the session stays with (goes back to) its sender."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(handoffs).where(
                handoffs.c.state == "pending", handoffs.c.deadline <= self._clock.now()))).all()
        expired = 0
        for row in rows:
            async with self._engine.begin() as conn:
                minutes = self._settings.handoff_timeout_seconds / 60
                if await self._decide(conn, Handoff.from_row(row), HandoffState.EXPIRED, None,
                                      f"Nobody accepted within {minutes:g} minutes"):
                    expired += 1
            await self._announce(row.id)
        return expired

    async def _decide(self, conn: AsyncConnection, handoff: Handoff, state: HandoffState,
                      by: int | None, reason: str | None = None) -> bool:
        """Move a pending handoff on; False if someone else got there first."""
        result = await conn.execute(handoffs.update().where(
            handoffs.c.id == handoff.id, handoffs.c.state == HandoffState.PENDING.value).values(
            state=state.value, decided_at=self._clock.now(), decided_by=by, reason=reason))
        if result.rowcount != 1:
            return False
        if handoff.to_team_id is not None and state is not HandoffState.ACCEPTED:
            await conn.execute(sessions.update().where(sessions.c.id == handoff.session_id)
                               .values(queue_team_id=None))
        return True

    async def pending_for(self, technician: Technician) -> list[Handoff]:
        """Transfers offered to this technician, and sessions waiting in their teams' queues."""
        team_ids = [team.id for team in await self._teams.of(technician.id)]
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(handoffs).where(
                handoffs.c.state == "pending",
                sa.or_(handoffs.c.to_technician_id == technician.id,
                       handoffs.c.to_team_id.in_(team_ids)))
                .order_by(handoffs.c.created_at))).all()
        return [Handoff.from_row(row) for row in rows]

    async def queues(self, technician: Technician) -> list[tuple[Team, list[Handoff]]]:
        """Each of the technician's teams (admins: every team) with its waiting sessions,
        longest waiting first."""
        teams = await (self._teams.all() if technician.is_admin
                       else self._teams.of(technician.id))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(handoffs).where(
                handoffs.c.state == "pending", handoffs.c.to_team_id.is_not(None))
                .order_by(handoffs.c.created_at))).all()
        waiting = [Handoff.from_row(row) for row in rows]
        return [(team, [h for h in waiting if h.to_team_id == team.id]) for team in teams]

    async def history(self, session_id: str) -> list[Handoff]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(handoffs).where(
                handoffs.c.session_id == session_id).order_by(handoffs.c.created_at))).all()
        return [Handoff.from_row(row) for row in rows]

    async def notice(self, handoff: Handoff, *, session: Session | None = None,
                     team: Team | None = None) -> HandoffNotice:
        """The handoff with the names of those involved (`session` and `team`, when the
        caller has them already, save reading them again)."""
        if session is None:
            session = await self._sessions.get(handoff.session_id)
        sender = await self._technicians.get(handoff.from_technician_id)
        receiver = (await self._technicians.get(handoff.to_technician_id)
                    if handoff.to_technician_id is not None else None)
        if team is None and handoff.to_team_id is not None:
            team = await self._teams.get(handoff.to_team_id)
        return HandoffNotice(handoff, sender.display_name,
                             receiver.display_name if receiver else None,
                             team.name if team else None, session.end_user_name,
                             session.state.value)

    async def _announce(self, handoff_id: str, extra: tuple[int, ...] = ()) -> Handoff:
        """Tell everyone concerned: the sender, the receiver or the team, admins."""
        handoff = await self.get(handoff_id)
        told = {handoff.from_technician_id, *extra}
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
        self._sessions.announce(session, also=(handoff.from_technician_id, *extra))
        return handoff

    # -- collaboration and notes -------------------------------------------------------------

    async def invite(self, session_id: str, owner: Technician, technician_id: int) -> Session:
        session = await self._sessions.for_technician(session_id, owner, Access.OWNER)
        if session.state is SessionState.ENDED:
            raise Conflict("This session has ended.", code="session_ended")
        guest = await self._technicians.get(technician_id)
        present = await self.technicians_in(session_id)
        if guest.id == session.technician_id or guest.id in present:
            raise Conflict(f"{guest.display_name} is in this session already.",
                           code="already_present")
        if len(present) + 1 >= MAX_TECHNICIANS:
            raise Conflict(f"At most {MAX_TECHNICIANS} technicians can be in a session.",
                           code="session_full")
        async with self._engine.begin() as conn:
            await _join(conn, session_id, guest.id, self._clock.now())
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

    async def notes(self, session_id: str, technician: Technician) -> str:
        await self._sessions.for_technician(session_id, technician, Access.CANDIDATE)
        async with self._engine.connect() as conn:
            return str(await conn.scalar(sa.select(sessions.c.notes).where(
                sessions.c.id == session_id)) or "")

    async def set_notes(self, session_id: str, technician: Technician, text: str) -> str:
        await self._sessions.for_technician(session_id, technician, Access.COLLABORATOR)
        if len(text) > MAX_NOTES:
            raise InvalidInput(f"Notes have at most {MAX_NOTES} characters.")
        async with self._engine.begin() as conn:
            await conn.execute(sessions.update().where(sessions.c.id == session_id).values(
                notes=text))
        return text

    # -- owners who are gone -----------------------------------------------------------------

    async def rehome_orphans(self) -> int:
        """Sessions whose owner logged out, or has had no dashboard open for longer than the
        reconnect window, go to: the collaborator present longest, else the last queue the
        session was in, else the owner's first team's queue; else they end."""
        now = self._clock.now()
        window = self._settings.reconnect_window_seconds
        await self._logins.touch(self._presence.online_ids())
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(sessions).where(
                sessions.c.state != SessionState.ENDED.value,
                sessions.c.queue_team_id.is_(None)))).all()
        moved = 0
        gone: dict[int, bool] = {}  # per owner, so that their logins are read once a sweep
        for row in rows:
            owner_id = row.technician_id
            if self._presence.online(owner_id):
                continue
            if owner_id not in gone:
                gone[owner_id] = await self._owner_gone(owner_id, now, window)
            if not gone[owner_id]:
                continue
            await self._rehome(row, owner_id)
            moved += 1
        return moved

    async def _owner_gone(self, owner_id: int, now: float, window: float) -> bool:
        """Logged out, or logged in but not seen for longer than `window`; False for
        API-only technicians (never logged in)."""
        if await self._logins.logged_out(owner_id):
            return True
        seen = await self._logins.gone_since(owner_id)
        return seen is not None and now - seen > window

    async def _rehome(self, row: Any, owner_id: int) -> None:
        owner = await self._technicians.get(owner_id)
        present = await self.technicians_in(row.id)
        if present:
            heir = await self._technicians.get(present[0])
            async with self._engine.begin() as conn:
                # Conditional: with several nodes sweeping, only one moves the session.
                moved = await conn.execute(sessions.update().where(
                    sessions.c.id == row.id, sessions.c.technician_id == owner_id,
                    sessions.c.queue_team_id.is_(None)).values(technician_id=heir.id))
                if moved.rowcount != 1:
                    return
                await conn.execute(session_technicians.delete().where(
                    session_technicians.c.session_id == row.id,
                    session_technicians.c.technician_id == heir.id))
            if self._on_new_owner is not None:
                await self._on_new_owner(
                    row.id, Actor(Role.TECHNICIAN, heir.id, heir.display_name), "handed_over")
            await self._sessions.record(
                row.id, "handed_over", {"from": owner.display_name, "to": heir.display_name,
                                        "from_id": owner.id, "to_id": heir.id,
                                        "stays": False, "reason": "owner_gone"})
            self._sessions.announce(await self._sessions.get(row.id), also=(owner_id, heir.id))
            return
        team_id = row.last_queue_team_id
        if team_id is None:
            owner_teams = await self._teams.of(owner_id)
            team_id = owner_teams[0].id if owner_teams else None
        if team_id is None:
            await self._sessions.end(row.id, None, "owner_gone")
            return
        now = self._clock.now()
        handoff_id = secrets.token_urlsafe(12)
        async with self._engine.begin() as conn:
            # Conditional: with several nodes sweeping, only one queues the session.
            queued = await conn.execute(sessions.update().where(
                sessions.c.id == row.id, sessions.c.technician_id == owner_id,
                sessions.c.queue_team_id.is_(None)).values(
                queue_team_id=team_id, last_queue_team_id=team_id))
            if queued.rowcount != 1:
                return
            await conn.execute(handoffs.insert().values(
                id=handoff_id, session_id=row.id, from_technician_id=owner_id,
                to_technician_id=None, to_team_id=team_id, keep_sender=False,
                note=f"{owner.display_name} is no longer connected; the session went to the "
                     f"queue automatically.",
                state=HandoffState.PENDING.value, created_at=now, deadline=None))
        await self._announce(handoff_id)


async def _join(conn: AsyncConnection, session_id: str, technician_id: int, now: float) -> None:
    """Put a technician into a session as a collaborator (again)."""
    updated = await conn.execute(session_technicians.update().where(
        session_technicians.c.session_id == session_id,
        session_technicians.c.technician_id == technician_id).values(left_at=None,
                                                                      joined_at=now))
    if updated.rowcount == 0:
        await conn.execute(session_technicians.insert().values(
            session_id=session_id, technician_id=technician_id, joined_at=now))
