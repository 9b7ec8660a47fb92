"""Who may see, use and manage which canned responses (the rules are in `Shelf`)."""

from __future__ import annotations

import dataclasses

from sqlalchemy.ext.asyncio import AsyncEngine

from ..audit import Action, AuditService
from ..clock import Clock
from ..errors import Forbidden, InvalidInput, NotFound
from ..handoff import Team, TeamStore
from ..technicians import Technician
from .model import CannedResponse, Draft, Scope, Shelf
from .store import CannedStore

MAX_QUERY = 200


@dataclasses.dataclass(frozen=True, slots=True)
class Listed:
    """A canned response as one technician sees it: with its team's name, and whether
    they may change and remove it."""

    response: CannedResponse
    team_name: str | None
    editable: bool


@dataclasses.dataclass(frozen=True, slots=True)
class _Caller:
    technician: Technician
    teams: dict[int, Team]  # every team, by id

    @property
    def team_ids(self) -> frozenset[int]:
        return frozenset(team.id for team in self.teams.values()
                         if self.technician.id in team.member_ids)

    def sees(self, shelf: Shelf) -> bool:
        return shelf.seen_by(self.technician, self.team_ids)

    def listed(self, response: CannedResponse) -> Listed:
        team = self.teams.get(response.shelf.team_id or 0)
        return Listed(response, team.name if team else None,
                      response.shelf.managed_by(self.technician))


def _scope(value: str) -> Scope:
    try:
        return Scope(value)
    except ValueError:
        raise InvalidInput("scope is one of company, team, personal.", code="bad_scope") from None


class CannedService:
    """Canned responses for technicians. Another technician's personal responses do not
    exist as far as anyone else can tell (NotFound, never Forbidden)."""

    def __init__(self, engine: AsyncEngine, teams: TeamStore, clock: Clock, *,
                 max_text_bytes: int, audit: AuditService) -> None:
        self._store = CannedStore(engine)
        self._audit = audit
        self._teams = teams
        self._clock = clock
        self._max_text_bytes = max_text_bytes

    async def _caller(self, technician: Technician) -> _Caller:
        return _Caller(technician, {team.id: team for team in await self._teams.all()})

    async def usable(self, technician: Technician, *, query: str | None = None,
                     scope: str | None = None, team_id: int | None = None) -> list[Listed]:
        """What `technician` may use: the company's, their teams' and their own, by title;
        only those matching `query`, on shelves of `scope`, or of the team `team_id` (which
        admins may name for any team, to manage its responses)."""
        caller = await self._caller(technician)
        if query is not None and len(query) > MAX_QUERY:
            raise InvalidInput(f"q has at most {MAX_QUERY} characters.")
        if team_id is not None:
            shelves = [self._team_shelf(caller, team_id)]
        else:
            shelves = [Shelf(Scope.COMPANY), Shelf(Scope.PERSONAL, technician_id=technician.id),
                       *(Shelf(Scope.TEAM, team_id=team) for team in sorted(caller.team_ids))]
        if scope is not None:
            wanted = _scope(scope)
            shelves = [shelf for shelf in shelves if shelf.scope is wanted]
        responses = await self._store.on_shelves(shelves)
        return [caller.listed(response) for response in responses
                if query is None or response.matches(query)]

    def _team_shelf(self, caller: _Caller, team_id: int) -> Shelf:
        if team_id not in caller.teams:
            raise NotFound("No such team.")
        shelf = Shelf(Scope.TEAM, team_id=team_id)
        if not caller.sees(shelf):
            raise Forbidden("Only the team's members and admins see its canned responses.")
        return shelf

    def _shelf(self, caller: _Caller, scope: str, team_id: int | None) -> Shelf:
        """The shelf a response is to go on, if the caller may manage it."""
        kind = _scope(scope)
        if kind is Scope.TEAM:
            if team_id is None:
                raise InvalidInput("A team's canned response needs team_id.",
                                   code="team_required")
            shelf = self._team_shelf(caller, team_id)
        elif team_id is not None:
            raise InvalidInput("team_id goes only with scope 'team'.")
        elif kind is Scope.PERSONAL:
            shelf = Shelf(Scope.PERSONAL, technician_id=caller.technician.id)
        else:
            shelf = Shelf(Scope.COMPANY)
        self._check_manages(caller, shelf)
        return shelf

    @staticmethod
    def _check_manages(caller: _Caller, shelf: Shelf) -> None:
        if not shelf.managed_by(caller.technician):
            whose = "the company's" if shelf.scope is Scope.COMPANY else "a team's"
            raise Forbidden(f"Only admins add, change and remove {whose} canned responses.")

    async def _visible(self, caller: _Caller, response_id: int) -> CannedResponse:
        response = await self._store.get(response_id)
        if not caller.sees(response.shelf):
            raise NotFound("No such canned response.")
        return response

    async def add(self, technician: Technician, *, scope: str, team_id: int | None,
                  title: str, text: str, shortcut: str | None) -> Listed:
        caller = await self._caller(technician)
        shelf = self._shelf(caller, scope, team_id)
        draft = Draft.parse(title, text, shortcut, max_text_bytes=self._max_text_bytes)
        made = await self._store.add(shelf, draft, self._clock.now())
        await self._audit.record(Action.CANNED_ADDED, details=_audited(made))
        return caller.listed(made)

    async def replace(self, technician: Technician, response_id: int, *, scope: str,
                      team_id: int | None, title: str, text: str,
                      shortcut: str | None) -> Listed:
        """Give the response new contents, and perhaps a new shelf: the caller must manage
        both the one it is on and the one it goes to."""
        caller = await self._caller(technician)
        current = await self._visible(caller, response_id)
        self._check_manages(caller, current.shelf)
        shelf = self._shelf(caller, scope, team_id)
        draft = Draft.parse(title, text, shortcut, max_text_bytes=self._max_text_bytes)
        changed = await self._store.change(current, shelf, draft, self._clock.now())
        await self._audit.record(Action.CANNED_CHANGED, details=_audited(changed))
        return caller.listed(changed)

    async def remove(self, technician: Technician, response_id: int) -> None:
        caller = await self._caller(technician)
        current = await self._visible(caller, response_id)
        self._check_manages(caller, current.shelf)
        await self._store.remove(current.id)
        await self._audit.record(Action.CANNED_REMOVED, details=_audited(current))


def _audited(response: CannedResponse) -> dict[str, object]:
    """A canned response as the audit log names it (its words are in the store)."""
    shelf = response.shelf
    return {"id": response.id, "title": response.title, "scope": shelf.scope.value,
            "team_id": shelf.team_id, "technician_id": shelf.technician_id}
