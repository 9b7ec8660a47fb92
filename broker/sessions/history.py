"""A technician's session history: every session they owned or took part in (handed over
or not), newest first, with search (broker/sessions/search.py), filters and cursor paging.

Who took part is kept in `session_members` by database triggers (migration 0013): the
owner when a session is created, every new owner, every technician invited in. Pages
are ordered by (created_at, id) descending, and a cursor is the last row's pair, so a
page never repeats or skips a session however many are started meanwhile (new ones
come before the first page).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import Forbidden, InvalidInput
from ..inputs import whole_number
from ..schema import session_members, sessions
from ..technicians import Technician
from . import search, store
from .model import Session, SessionState

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclasses.dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the last session's creation time and id."""

    created_at: float
    session_id: str

    def encode(self) -> str:
        raw = json.dumps([self.created_at, self.session_id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            created_at, session_id = json.loads(raw)
        except (ValueError, TypeError, binascii.Error) as exc:
            raise InvalidInput("This cursor is not one the broker handed out.",
                               code="bad_cursor") from exc
        if (not isinstance(created_at, int | float) or isinstance(created_at, bool)
                or not isinstance(session_id, str) or len(session_id) > 32):
            raise InvalidInput("This cursor is not one the broker handed out.",
                               code="bad_cursor")
        return cls(float(created_at), session_id)


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryQuery:
    terms: tuple[str, ...] = ()
    states: frozenset[SessionState] = frozenset()
    technician_id: int | None = None
    since: float | None = None   # created at or after
    until: float | None = None   # created before
    after: Cursor | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if not 0 < self.limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be 1 to {MAX_LIMIT}.")
        if len(self.terms) > search.MAX_TERMS:
            raise InvalidInput(f"A search has at most {search.MAX_TERMS} words.")

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> HistoryQuery:
        """From the API's query parameters: q, state (comma-separated), technician_id,
        from, to (ISO 8601 dates or times), cursor, limit."""
        q = params.get("q", "")
        terms = search.terms(q)
        if q.strip() and not terms:
            raise InvalidInput("Search for at least one word or number.", code="invalid_query")
        try:
            states = frozenset(SessionState(name.strip())
                               for name in params.get("state", "").split(",") if name.strip())
        except ValueError as exc:
            raise InvalidInput("state must be waiting, active, reconnecting or ended.") from exc
        limit = _whole(params, "limit")
        return cls(
            terms=terms, states=states,
            technician_id=_whole(params, "technician_id"),
            since=parse_time(params["from"], end_of_day=False) if params.get("from") else None,
            until=parse_time(params["to"], end_of_day=True) if params.get("to") else None,
            after=Cursor.decode(params["cursor"]) if params.get("cursor") else None,
            limit=DEFAULT_LIMIT if limit is None else limit)


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryPage:
    sessions: list[Session]
    next_cursor: str | None


class History:
    """Reads session history pages, through `reader`: with SQLite a connection of its own
    whose statements run on a thread (a search can take longer than the statements the
    event loop's own connection is for, broker/sqlite.py); with PostgreSQL the engine.
    A search first has SQLite's index catch up, through `engine` (it writes)."""

    def __init__(self, engine: AsyncEngine, reader: AsyncEngine | None = None, *,
                 collect_at_most: int = search.COLLECT_AT_MOST) -> None:
        self._engine = engine
        self._reader = reader or engine
        self._collect_at_most = collect_at_most

    def collecting_at_most(self, count: int) -> History:
        """The same history, with another limit for looking a word up first (tests)."""
        return History(self._engine, self._reader, collect_at_most=count)

    async def _catch_up(self) -> None:
        if self._engine.dialect.name == "sqlite":
            async with self._engine.begin() as conn:
                await search.catch_up(conn)

    async def page(self, viewer: Technician, query: HistoryQuery) -> HistoryPage:
        """Admins read anyone's history (everyone's without `technician_id`); others only
        their own."""
        technician_id = query.technician_id
        if not viewer.is_admin:
            if technician_id not in (None, viewer.id):
                raise Forbidden("Only admins can read other technicians' history.")
            technician_id = viewer.id
        where: list[sa.ColumnElement[bool]] = []
        if technician_id is not None:
            where.append(sessions.c.id.in_(sa.select(session_members.c.session_id).where(
                session_members.c.technician_id == technician_id)))
        if query.states:
            # Most sessions have ended: for them, reading in time order beats the state
            # index (an expression of the column keeps the planner off that index).
            state = sessions.c.state + "" if SessionState.ENDED in query.states \
                else sessions.c.state
            where.append(state.in_(sorted(s.value for s in query.states)))
        if query.since is not None:
            where.append(sessions.c.created_at >= query.since)
        if query.until is not None:
            where.append(sessions.c.created_at < query.until)
        if query.after is not None:
            where.append(sa.or_(
                sessions.c.created_at < query.after.created_at,
                sa.and_(sessions.c.created_at == query.after.created_at,
                        sessions.c.id < query.after.session_id)))
        if query.terms:
            await self._catch_up()
        async with self._reader.connect() as conn:
            where += await search.conditions(conn, query.terms, self._collect_at_most)
            found = await store.load_all(conn, store.session_query().where(*where).order_by(
                sessions.c.created_at.desc(), sessions.c.id.desc()).limit(query.limit + 1))
        more = len(found) > query.limit
        found = found[:query.limit]
        last = found[-1] if more else None
        return HistoryPage(found, Cursor(last.created_at, last.id).encode() if last else None)


def parse_time(text: str, *, end_of_day: bool) -> float:
    """Seconds since the epoch of an ISO 8601 date or time (UTC unless it says otherwise).
    A date alone is its midnight, or with `end_of_day` the next one (so that "to" a date
    includes that day)."""
    text = text.strip()
    if "T" in text:
        text = text.replace(" ", "+")  # an unencoded "+01:00" arrives as " 01:00"
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return (midnight + timedelta(days=1 if end_of_day else 0)).timestamp()
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"{text!r} is not an ISO 8601 date or time.",
                           code="invalid_time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _whole(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name)
    return None if value is None else whole_number(value, name)
