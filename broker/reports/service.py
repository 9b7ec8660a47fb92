"""Reports for managers: per day, technician or team, how sessions, handovers and
customers' requests went (sql.py says what each figure counts). Admins read everyone's;
every other technician only their own figures."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import Forbidden
from ..schema import teams, technicians
from ..technicians import Technician
from . import sql
from .days import Days
from .query import Grouping, ReportQuery

FIGURES = (*sql.SESSION_FIGURES, *sql.HANDOVER_FIGURES, *sql.REQUEST_FIGURES)
# Figures that are averages (NULL where nothing was measured); the rest are counts.
AVERAGES = frozenset({"join_seconds", "first_response_seconds", "handling_seconds", "rating",
                      "solved_share", "resolved_share", "queue_wait_seconds"})


@dataclasses.dataclass(frozen=True, slots=True)
class ReportRow:
    """One row: a day (`day`), a technician or a team (`id` and `name`; a technician's
    id is None for customers' requests nobody took), and its figures by name."""

    day: date | None
    id: int | None
    name: str | None
    figures: dict[str, float | int | None]


@dataclasses.dataclass(frozen=True, slots=True)
class Report:
    query: ReportQuery
    rows: list[ReportRow]


@dataclasses.dataclass(frozen=True, slots=True)
class CategoryRow:
    """A category of the closing forms (None: none chosen), its sessions, and the share of
    them resolved (None where nobody said yes or no)."""

    category: str | None
    sessions: int
    resolved_share: float | int | None


def _for(viewer: Technician, query: ReportQuery) -> ReportQuery:
    """`query` as `viewer` may read it: admins anyone's, others only their own figures."""
    if viewer.is_admin:
        return query
    if query.grouping is Grouping.TEAM or query.team_id is not None:
        raise Forbidden("Only admins can read teams' reports.")
    if query.technician_id not in (None, viewer.id):
        raise Forbidden("Only admins can read other technicians' figures.")
    return dataclasses.replace(query, technician_id=viewer.id)


def _number(name: str, value: Any) -> float | int | None:
    if name not in AVERAGES:
        return int(value or 0)
    if value is None:
        return None
    return round(float(value) if isinstance(value, Decimal) else float(value), 3)


class Reports:
    """Reads reports through `reader` (with SQLite a connection of its own whose
    statements run on a thread, as for the history; with PostgreSQL the engine)."""

    def __init__(self, reader: AsyncEngine) -> None:
        self._reader = reader

    async def report(self, viewer: Technician, query: ReportQuery) -> Report:
        query = _for(viewer, query)
        found: dict[Any, dict[str, Any]] = {}
        async with self._reader.connect() as conn:
            for statement in (sql.session_figures(query), sql.handover_figures(query),
                              sql.request_figures(query)):
                for row in (await conn.execute(statement)).mappings():
                    found.setdefault(row["bucket"], {}).update(
                        (name, value) for name, value in row.items() if name != "bucket")
            names = await self._names(conn, query.grouping, [k for k in found if k is not None])
        return Report(query, self._rows(query, found, names))

    async def categories(self, viewer: Technician, query: ReportQuery) -> list[CategoryRow]:
        """The sessions of the range with a closing form, per category (its grouping is
        not used), most first; None for those without a category."""
        query = _for(viewer, query)
        async with self._reader.connect() as conn:
            rows = (await conn.execute(sql.category_figures(query))).all()
        found = [CategoryRow(row.bucket, int(row.sessions),
                             _number("resolved_share", row.resolved_share)) for row in rows]
        return sorted(found, key=lambda row: (-row.sessions, row.category is None,
                                              row.category or ""))

    @staticmethod
    async def _names(conn: Any, grouping: Grouping, ids: list[int]) -> dict[int, str]:
        if grouping is Grouping.DAY or not ids:
            return {}
        table, column = ((technicians, technicians.c.display_name)
                         if grouping is Grouping.TECHNICIAN else (teams, teams.c.name))
        rows = await conn.execute(sa.select(table.c.id, column).where(table.c.id.in_(ids)))
        return {row[0]: row[1] for row in rows}

    @staticmethod
    def _rows(query: ReportQuery, found: dict[Any, dict[str, Any]],
              names: dict[int, str]) -> list[ReportRow]:
        def figures(values: dict[str, Any]) -> dict[str, float | int | None]:
            return {name: _number(name, values.get(name)) for name in FIGURES}

        if query.grouping is Grouping.DAY:
            # Every day of the range, those without anything too (a chart's gaps are zeros).
            first = (query.days.first - Days.day(0)).days
            return [ReportRow(day, None, None, figures(found.get(first + n, {})))
                    for n, day in enumerate(query.days.dates())]
        rows = [ReportRow(None, key, names.get(key) if key is not None else None,
                          figures(values)) for key, values in found.items()]
        rows.sort(key=lambda row: (row.id is None, (row.name or "").casefold(), row.id or 0))
        return rows
