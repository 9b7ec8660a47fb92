"""The canned_responses table. Shortcuts are unique per shelf: checked first for a clear
answer, and held by the table's partial unique indexes when two writers race."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..errors import Conflict, NotFound
from ..schema import canned_responses
from .model import MAX_PER_SHELF, CannedResponse, Draft, Scope, Shelf

_TABLE = canned_responses.c


def _shelf_of(row: sa.Row[tuple[object, ...]]) -> Shelf:
    if row.technician_id is not None:
        return Shelf(Scope.PERSONAL, technician_id=row.technician_id)
    if row.team_id is not None:
        return Shelf(Scope.TEAM, team_id=row.team_id)
    return Shelf(Scope.COMPANY)


def _from_row(row: sa.Row[tuple[object, ...]]) -> CannedResponse:
    return CannedResponse(row.id, _shelf_of(row), row.title, row.text, row.shortcut,
                          row.created_at, row.updated_at)


def _on(shelf: Shelf) -> sa.ColumnElement[bool]:
    """The rows on `shelf`."""
    if shelf.scope is Scope.PERSONAL:
        return _TABLE.technician_id == shelf.technician_id
    if shelf.scope is Scope.TEAM:
        return _TABLE.team_id == shelf.team_id
    return sa.and_(_TABLE.team_id.is_(None), _TABLE.technician_id.is_(None))


async def _check_room(conn: AsyncConnection, shelf: Shelf, draft: Draft,
                      moving: int | None = None) -> None:
    """Refuse a shortcut taken on `shelf`, or a full shelf (`moving`: the response that is
    being changed, which does not count against itself)."""
    others = sa.and_(_on(shelf), _TABLE.id != moving) if moving is not None else _on(shelf)
    if draft.shortcut is not None and await conn.scalar(sa.select(_TABLE.id).where(
            others, _TABLE.shortcut == draft.shortcut)):
        raise _taken(draft)
    count = await conn.scalar(sa.select(sa.func.count()).select_from(canned_responses)
                              .where(others))
    if int(count or 0) >= MAX_PER_SHELF:
        raise Conflict(f"A shelf holds at most {MAX_PER_SHELF} canned responses.",
                       code="shelf_full")


def _taken(draft: Draft) -> Conflict:
    return Conflict(f"The shortcut /{draft.shortcut} is taken on this shelf.",
                    code="shortcut_taken")


class CannedStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def on_shelves(self, shelves: list[Shelf]) -> list[CannedResponse]:
        """Every response on any of `shelves`, by title."""
        if not shelves:
            return []
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(canned_responses).where(
                sa.or_(*(_on(shelf) for shelf in shelves))))).all()
        found = [_from_row(row) for row in rows]
        return sorted(found, key=lambda response: (response.title.casefold(), response.id))

    async def get(self, response_id: int) -> CannedResponse:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(canned_responses).where(
                _TABLE.id == response_id))).first()
        if row is None:
            raise NotFound("No such canned response.")
        return _from_row(row)

    async def add(self, shelf: Shelf, draft: Draft, now: float) -> CannedResponse:
        try:
            async with self._engine.begin() as conn:
                await _check_room(conn, shelf, draft)
                result = await conn.execute(canned_responses.insert().values(
                    team_id=shelf.team_id, technician_id=shelf.technician_id,
                    title=draft.title, text=draft.text, shortcut=draft.shortcut,
                    created_at=now, updated_at=now))
                (new_id,) = result.inserted_primary_key or (0,)
        except sa.exc.IntegrityError as exc:
            if draft.shortcut is None:
                raise  # not a shortcut taken meanwhile: a fault
            raise _taken(draft) from exc
        return CannedResponse(int(new_id), shelf, draft.title, draft.text, draft.shortcut,
                              now, now)

    async def change(self, current: CannedResponse, shelf: Shelf, draft: Draft,
                     now: float) -> CannedResponse:
        try:
            async with self._engine.begin() as conn:
                await _check_room(conn, shelf, draft, moving=current.id)
                result = await conn.execute(canned_responses.update().where(
                    _TABLE.id == current.id).values(
                    team_id=shelf.team_id, technician_id=shelf.technician_id,
                    title=draft.title, text=draft.text, shortcut=draft.shortcut,
                    updated_at=now))
        except sa.exc.IntegrityError as exc:
            if draft.shortcut is None:
                raise  # not a shortcut taken meanwhile: a fault
            raise _taken(draft) from exc
        if result.rowcount != 1:
            raise NotFound("No such canned response.")
        return dataclasses.replace(current, shelf=shelf, title=draft.title, text=draft.text,
                                   shortcut=draft.shortcut, updated_at=now)

    async def remove(self, response_id: int) -> None:
        async with self._engine.begin() as conn:
            result = await conn.execute(canned_responses.delete().where(
                _TABLE.id == response_id))
        if result.rowcount != 1:
            raise NotFound("No such canned response.")

