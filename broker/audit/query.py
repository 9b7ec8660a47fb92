"""Reading the audit log a page at a time, newest first, with filters.

A cursor is the last record's number: records are numbered in one order and never
renumbered, so a page never repeats or skips one however many are written meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import InvalidInput
from ..inputs import whole_number
from ..schema.audit import audit_records
from .chain import from_row
from .model import Action, ActorKind, Record

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


def _encode(record_id: int) -> str:
    return base64.urlsafe_b64encode(f"a{record_id}".encode()).decode().rstrip("=")


def _decode(text: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        if not raw.startswith("a") or not raw[1:].isdigit() or len(raw) > 20:
            raise ValueError(raw)
        return int(raw[1:])
    except (ValueError, binascii.Error) as exc:
        raise InvalidInput("This cursor is not one the broker handed out.",
                           code="bad_cursor") from exc


@dataclasses.dataclass(frozen=True, slots=True)
class AuditQuery:
    since: float | None = None   # at or after
    until: float | None = None   # before
    actor_kind: ActorKind | None = None
    actor_id: str | None = None
    session_id: str | None = None
    actions: frozenset[Action] = frozenset()
    before_id: int | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if not 0 < self.limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be 1 to {MAX_LIMIT}.")

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> AuditQuery:
        """From the API's query parameters: from, to (ISO 8601 dates or times),
        actor_kind, actor_id, session_id, action (comma-separated), cursor, limit."""
        # Imported here: the sessions domain records into this one.
        from ..sessions.history import parse_time

        try:
            kind = ActorKind(params["actor_kind"]) if params.get("actor_kind") else None
        except ValueError as exc:
            raise InvalidInput("actor_kind must be one of: " + ", ".join(ActorKind)) from exc
        try:
            actions = frozenset(Action(name.strip()) for name in
                                params.get("action", "").split(",") if name.strip())
        except ValueError as exc:
            raise InvalidInput("action names no audited act (docs/audit.md lists them).",
                               code="invalid_action") from exc
        for name in ("actor_id", "session_id"):
            if len(params.get(name, "")) > 64:
                raise InvalidInput(f"{name} is too long.")
        limit = params.get("limit")
        return cls(
            since=parse_time(params["from"], end_of_day=False) if params.get("from") else None,
            until=parse_time(params["to"], end_of_day=True) if params.get("to") else None,
            actor_kind=kind, actor_id=params.get("actor_id") or None,
            session_id=params.get("session_id") or None, actions=actions,
            before_id=_decode(params["cursor"]) if params.get("cursor") else None,
            limit=DEFAULT_LIMIT if limit is None else whole_number(limit, "limit"))


@dataclasses.dataclass(frozen=True, slots=True)
class AuditPage:
    records: list[Record]
    next_cursor: str | None


async def page(engine: AsyncEngine, query: AuditQuery) -> AuditPage:
    where: list[sa.ColumnElement[bool]] = []
    if query.since is not None:
        where.append(audit_records.c.at >= query.since)
    if query.until is not None:
        where.append(audit_records.c.at < query.until)
    if query.actor_kind is not None:
        where.append(audit_records.c.actor_kind == query.actor_kind.value)
    if query.actor_id is not None:
        where.append(audit_records.c.actor_id == query.actor_id)
    if query.session_id is not None:
        where.append(audit_records.c.session_id == query.session_id)
    if query.actions:
        where.append(audit_records.c.action.in_(sorted(a.value for a in query.actions)))
    if query.before_id is not None:
        where.append(audit_records.c.id < query.before_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(audit_records).where(*where).order_by(
            audit_records.c.id.desc()).limit(query.limit + 1))).all()
    found = [from_row(row) for row in rows[:query.limit]]
    more = len(rows) > query.limit
    return AuditPage(found, _encode(found[-1].id) if more else None)
