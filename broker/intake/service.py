"""Customers who start the contact: the pre-chat form, requests in team queues, messages
left while nobody is online, and response targets by severity.

A request is made of the existing parts: a session that nobody owns yet, with the
customer admitted as its end user at once (no key), waiting in a team's queue as a
handoff that no technician sent (`HandoffService.enqueue`). Technicians see it in their
queues and take it as any queued session (exactly one wins); the customer keeps typing
and sending files meanwhile, and hears of their place in the queue (broker/intake/
queue.py). With nobody of the team online, the request is a message instead: stored,
emailed to the team's address through the delivery queue, and answered later by a
technician who starts a session from it, its key emailed to the customer.

The form's values stay with the request (and so with its session). The first response
is due at the severity's target, counted in business hours where the target says so;
the sweep records the first response (a technician's first chat line), alerts the team
when 80 % of the target has passed, and records a miss as an event in the session.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..audit import Action, AuditService
from ..bus import EventBus
from ..clock import Clock
from ..delivery import Channel, Delivery, DeliveryService
from ..errors import Conflict, Forbidden, NotFound, RateLimited
from ..handoff import Handoff, HandoffService, PresenceBoard, Team, TeamStore
from ..keys import IssuedKey
from ..protocol.queue import QueuePosition
from ..ratelimit import Floods
from ..sessions import Redemption, Role, Roster, Session, SessionService
from ..settings import Settings
from ..technicians import Technician
from . import form as forms
from . import notice, store
from .hours import BusinessHours
from .model import Availability, Request, RequestKind, RequestStatus, Target
from .queue import QueueBoard, wait
from .sweep import Sweeper

log = logging.getLogger(__name__)
_FORM = "form"


class QueueFull(RateLimited):
    """The team's queue holds as many waiting requests as it may; try again later."""

    code = "queue_full"


@dataclasses.dataclass(frozen=True, slots=True)
class Submitted:
    """What a customer's form became: a chat waiting in a queue (with the customer's
    credential and place), a message, or nothing (a bot that filled the honeypot)."""

    request: Request | None
    redemption: Redemption | None = None
    position: int | None = None
    estimated_wait_seconds: int | None = None


class IntakeService:
    """See the module docstring. Takes part in each session's end (it registers itself)."""

    def __init__(self, settings: Settings, engine: AsyncEngine, sessions: SessionService,
                 handoffs: HandoffService, teams: TeamStore, presence: PresenceBoard,
                 roster: Roster, deliveries: DeliveryService, bus: EventBus,
                 clock: Clock, floods: tuple[Floods, Floods],
                 audit: AuditService) -> None:
        self._settings = settings
        self._audit = audit
        self._engine = engine
        self._sessions = sessions
        self._handoffs = handoffs
        self._teams = teams
        self._presence = presence
        self._roster = roster
        self._deliveries = deliveries
        self._bus = bus
        self._clock = clock
        self.hours = BusinessHours.parse(settings.business_timezone, settings.business_days,
                                         settings.business_hours)
        self.queue = QueueBoard(engine, bus, clock,
                                interval=settings.intake_queue_update_seconds,
                                window=settings.intake_wait_window_seconds,
                                shared=settings.several_nodes)
        # Per client address and for everyone together (broker.core.floods).
        self._by_address, self._everyone = floods
        self._available: dict[int, tuple[float, Availability]] = {}
        self._sweeper = Sweeper(settings, engine, sessions, teams, roster, bus, clock,
                                self.queue)
        sessions.on_end(self)
        handoffs.on_accept(self._accepted)

    async def close(self) -> None:
        await self.queue.close()

    # -- the form ---------------------------------------------------------------------------

    async def form(self) -> forms.FormConfig:
        async with self._engine.connect() as conn:
            document = await store.config(conn, _FORM)
        return forms.default_form() if document is None else forms.parse(document)

    async def set_form(self, document: Any) -> forms.FormConfig:
        """Replace the form and the targets (admins; the caller checks who asks)."""
        config = forms.parse(document)
        async with self._engine.begin() as conn:
            await store.set_config(conn, _FORM, config.to_json(), self._clock.now())
        await self._audit.record(Action.INTAKE_FORM_CHANGED, details={
            "fields": len(document.get("fields", [])) if isinstance(document, dict) else None})
        return config

    # -- the teams a customer can reach -------------------------------------------------------

    async def team(self, ref: str | None) -> Team:
        """A team by id, name or slug ("tier-1" for "Tier 1"); the only team if `ref` is
        None and there is just one."""
        teams = await self._teams.all()
        if ref is None:
            if len(teams) == 1:
                return teams[0]
            raise forms.FieldInvalid("team", "Choose a team.", code="field_required")
        wanted = ref.strip().lower()
        for team in teams:
            if wanted in (str(team.id), team.name.lower(), slug(team.name)):
                return team
        raise forms.FieldInvalid("team", "There is no such team.", code="unknown_team")

    async def availability(self, team: Team) -> Availability:
        """Whether anyone of the team is online, and how long a new request would wait;
        cached for `availability_cache_seconds` (the chat button on every page asks)."""
        now = self._clock.now()
        cached = self._available.get(team.id)
        if cached is not None and now < cached[0]:
            return cached[1]
        async with self._engine.connect() as conn:
            waiting = await self.queue.length(conn, team.id)
            per_pick = await self.queue.seconds_per_pick(conn, team.id)
        found = Availability(self.online(team), wait(waiting + 1, per_pick))
        self._available[team.id] = (now + self._settings.availability_cache_seconds, found)
        return found

    async def set_message_email(self, team_id: int, address: str | None) -> Team:
        """Where the team's messages go (admins; the caller checks who asks)."""
        if address is not None and address.strip():
            address = forms.email_address("email", address.strip())
        return await self._teams.set_message_email(team_id, address or None)

    def online(self, team: Team) -> bool:
        return any(self._presence.online(member) for member in team.member_ids)

    # -- customers' requests ----------------------------------------------------------------

    async def submit(self, values: dict[str, Any], *, client: str, language: str,
                     default_name: str) -> Submitted:
        """A customer's form: a chat in the team's queue if anyone of the team is online,
        else a message. Limited per client address and for everyone together."""
        await self._by_address.take(client)
        await self._everyone.take("")
        if values.get(forms.HONEYPOT):
            log.info("a form from %s filled the honeypot field; nothing was made", client)
            return Submitted(None)
        config = await self.form()
        answers = config.check(values, short_max=self._settings.intake_max_field_chars,
                               long_max=self._settings.intake_max_text_chars,
                               region=self._settings.sms_default_country)
        team = await self.team(answers.team)
        target = config.target(answers.severity)
        now = self._clock.now()
        row: dict[str, Any] = {"id": secrets.token_urlsafe(16), "team_id": team.id,
               "severity": answers.severity.value, "name": answers.name or default_name,
               "email": answers.email, "phone": answers.phone,
               "description": answers.description, "fields": answers.custom,
               "language": language, "created_at": now, "due_at": self._due(now, target, 1.0),
               "alert_at": self._due(now, target, 0.8), "target_seconds": target.seconds,
               "business_hours": target.business_hours}
        if not self.online(team):
            return await self._leave_message(team, row)
        async with self._engine.connect() as conn:
            if await self.queue.length(conn, team.id) >= self._settings.intake_max_waiting:
                raise QueueFull(60.0, "Too many customers are waiting; try again later.")
        redemption = await self._sessions.open_unowned(row["name"], ("request.opened", {
            "team": team.name, "severity": row["severity"], "due_at": row["due_at"]}))
        row.update(kind=RequestKind.CHAT.value, session_id=redemption.session_id,
                   participant_id=redemption.actor.id)
        async with self._engine.begin() as conn:
            await store.insert(conn, row)
        note = f"[{row['severity']}] {answers.description}"  # enqueue cuts it to size
        try:
            handoff = await self._handoffs.enqueue(redemption.session_id, team.id, note)
        except BaseException:
            await self._sessions.end(redemption.session_id, None, "not_queued")
            raise
        async with self._engine.begin() as conn:
            await store.link(conn, row["id"], handoff.id)
        self.queue.changed(team.id)
        request = await self.get(row["id"])
        place = await self.queue.place(request)
        return Submitted(request, redemption, place.position if place else None,
                         place.estimated_wait_seconds if place else None)

    async def _leave_message(self, team: Team, row: dict[str, Any]) -> Submitted:
        if row["email"] is None:
            raise forms.FieldInvalid("email", "Nobody is online: leave an email address so "
                                     "that we can answer.", code="field_required")
        row.update(kind=RequestKind.MESSAGE.value)
        async with self._engine.begin() as conn:
            await store.insert(conn, row)
        request = await self.get(row["id"])
        if team.message_email and self._deliveries.configured(Channel.EMAIL):
            subject, text = notice.render(self._settings, request, team)
            await self._deliveries.notify(team.message_email, subject, text,
                                          reply_to=request.email)
        return Submitted(request)

    def _due(self, start: float, target: Target, share: float) -> float:
        seconds = target.seconds * share
        return self.hours.add(start, seconds) if target.business_hours else start + seconds

    # -- reading requests -------------------------------------------------------------------

    async def get(self, request_id: str) -> Request:
        async with self._engine.connect() as conn:
            request = await store.get(conn, request_id)
        if request is None:
            raise NotFound("No such request.")
        return request

    async def for_participant(self, request_id: str, token: str) -> Request:
        """The request, for the customer whose chat it is (their participant token)."""
        session_id, actor = await self._sessions.participant(token)
        request = await self.get(request_id)
        if request.session_id != session_id or actor.role is not Role.END_USER:
            raise Forbidden("This credential is for another request.")
        return request

    async def for_technician(self, request_id: str, technician: Technician) -> Request:
        request = await self.get(request_id)
        await self._may_handle(request.team_id, technician)
        return request

    async def of_session(self, session: Session) -> Request | None:
        """The request a session was made for (the caller checked access to it)."""
        return (await self.of_sessions([session.id])).get(session.id)

    async def of_sessions(self, session_ids: list[str]) -> dict[str, Request]:
        async with self._engine.connect() as conn:
            return await store.by_sessions(conn, session_ids)

    async def listed(self, technician: Technician, *, team_id: int | None = None,
                     kind: RequestKind | None = None, limit: int = 200) -> list[Request]:
        """Newest first: of the technician's teams (admins: all), or of one of them."""
        if team_id is not None:
            await self._may_handle(team_id, technician)
            team_ids: list[int] | None = [team_id]
        else:
            team_ids = None if technician.is_admin else [
                team.id for team in await self._teams.of(technician.id)]
        async with self._engine.connect() as conn:
            return await store.listed(conn, team_ids, kind, limit)

    async def _may_handle(self, team_id: int, technician: Technician) -> None:
        team = await self._teams.get(team_id)
        if not technician.is_admin and technician.id not in team.member_ids:
            raise Forbidden("This request is for another team.")

    # -- answering a message ------------------------------------------------------------------

    async def answer(self, request_id: str, technician: Technician,
                     language: str | None = None) -> tuple[Session, IssuedKey, Delivery]:
        """Start a session from a message, its key emailed to the customer; exactly one of
        several technicians answering at once does."""
        request = await self.for_technician(request_id, technician)
        if request.kind is not RequestKind.MESSAGE or request.email is None:
            raise Conflict("Only a message is answered this way.", code="not_a_message")
        if not self._deliveries.configured(Channel.EMAIL):
            raise Conflict(self._deliveries.setup_hint(Channel.EMAIL, admin=technician.is_admin)
                           or "", code="email_not_configured")
        async with self._engine.begin() as conn:
            if not await store.claim(conn, request_id, technician.id, self._clock.now()):
                raise Conflict("Someone has answered this message already.",
                               code="already_answered")
        try:
            session, key = await self._sessions.start(technician)
            delivery = await self._deliveries.request(session, technician, Channel.EMAIL.value,
                                                      request.email,
                                                      language or request.language)
        except BaseException:
            async with self._engine.begin() as conn:
                await store.mark(conn, request_id, answered_at=None, answered_by=None)
            raise
        async with self._engine.begin() as conn:
            await store.mark(conn, request_id, answer_session_id=session.id)
        return session, key, delivery

    # -- the queue as it changes --------------------------------------------------------------

    async def place(self, session_id: str) -> QueuePosition:
        """The customer's place in their queue now, for `queue.ask`."""
        request = (await self.of_sessions([session_id])).get(session_id)
        place = None
        if request is not None and request.status is RequestStatus.WAITING:
            place = await self.queue.place(request)
        if place is None:
            raise Conflict("This chat is not waiting in a queue.", code="not_queued")
        return place

    async def _accepted(self, handoff: Handoff) -> None:
        if handoff.to_team_id is not None:
            self.queue.changed(handoff.to_team_id)

    async def session_ended(self, conn: AsyncConnection, session_id: str, now: float) -> None:
        """A request's session ended (in that transaction): no response is owed any more,
        and if it was waiting, those behind it move up."""
        request = (await store.by_sessions(conn, [session_id])).get(session_id)
        if request is None:
            return
        await store.close(conn, session_id, now)
        if request.status is RequestStatus.WAITING:
            self.queue.changed(request.team_id)

    # -- the sweep ----------------------------------------------------------------------------

    async def sweep(self) -> None:
        """Response targets and customers who never connected (broker/intake/sweep.py)."""
        await self._sweeper.run()


def slug(name: str) -> str:
    """A team's name as it appears in a URL or a data-team attribute: "tier-1"."""
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())
