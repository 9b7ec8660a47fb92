"""The report's statements: three GROUP BY queries (sessions, handovers, customers'
requests) whose rows share a key (a day number, a technician id or a team id) and are
put side by side by the service. SQLAlchemy Core; the same text on SQLite and PostgreSQL
(days.py says how days are counted without their date functions).

What each figure counts, and on which day (docs/reports.md):
- sessions: on the day each was created (its key issued, or its customer asking), in the
  figures of its owner (the technician who has it now or had it at the end) and of the
  owner's teams; started, joined (its end user came in), ended, the time from the key to
  its use, from the end user's arrival to a technician's first chat line, from arrival
  to the end (handling), its survey (rating 1-5, solved yes/no), and its technicians'
  closing form as saved last (broker/closing: whether there is one, resolved yes/no);
- handovers: on the day each was accepted, for the technician who handed over;
- closings by category (broker/closing): the sessions of the range whose technicians
  saved a closing form, per category of its newest save, and how many were resolved;
- customers' requests (broker/intake): on the day each was made, for the team it was made
  to and the technician who took it (or answered the message): the wait in the queue until
  a technician took it, and whether its response target was missed.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..handoff.model import HandoffState
from ..schema import (
    events,
    handoffs,
    intake_requests,
    session_closings,
    sessions,
    support_keys,
    survey_responses,
    team_members,
)
from .query import Grouping, ReportQuery

_S, _H, _R = sessions.c, handoffs.c, intake_requests.c

SESSION_FIGURES = ("started", "joined", "ended", "join_seconds", "first_response_seconds",
                   "handling_seconds", "surveys", "rating", "solved_share", "closings",
                   "resolved_share")
HANDOVER_FIGURES = ("handed_over",)
REQUEST_FIGURES = ("requests", "queue_wait_seconds", "breaches")


def _team_of(technician: sa.ColumnElement[Any], team_id: int) -> sa.ColumnElement[bool]:
    return technician.in_(sa.select(team_members.c.technician_id).where(
        team_members.c.team_id == team_id))


def _in_range(at: sa.ColumnElement[Any], query: ReportQuery) -> sa.ColumnElement[bool]:
    return sa.and_(at >= query.days.since, at < query.days.until)


def session_figures(query: ReportQuery) -> sa.Select[Any]:
    # Per session through the events' primary key (session_id, seq): a grouped subquery
    # over every event of the range, joined back, was many times slower on SQLite.
    first = (sa.select(sa.func.min(events.c.created_at))
             .where(events.c.session_id == _S.id, events.c.type == "message",
                    events.c.sender.like("t%"))
             .correlate(sessions).scalar_subquery())
    # A session's closing is its newest save (through the index on session_id, id).
    newest = (sa.select(sa.func.max(session_closings.c.id))
              .where(session_closings.c.session_id == _S.id)
              .correlate(sessions).scalar_subquery())
    joined = (sessions.outerjoin(support_keys, support_keys.c.session_id == _S.id)
              .outerjoin(survey_responses, survey_responses.c.session_id == _S.id)
              .outerjoin(session_closings, session_closings.c.id == newest))
    where = [_in_range(_S.created_at, query)]
    key: sa.ColumnElement[Any]
    if query.grouping is Grouping.DAY:
        key = query.days.number(_S.created_at)
    elif query.grouping is Grouping.TECHNICIAN:
        key = _S.technician_id
    else:
        joined = joined.join(team_members, team_members.c.technician_id == _S.technician_id)
        key = team_members.c.team_id
    if query.technician_id is not None:
        where.append(_S.technician_id == query.technician_id)
    if query.team_id is not None:
        where.append(_team_of(_S.technician_id, query.team_id))
    solved, resolved = survey_responses.c.solved, session_closings.c.resolved
    return (sa.select(
        key.label("bucket"),
        sa.func.count().label("started"),
        sa.func.count(_S.started_at).label("joined"),
        sa.func.count(_S.ended_at).label("ended"),
        sa.func.avg(support_keys.c.used_at - support_keys.c.created_at).label("join_seconds"),
        sa.func.avg(first - _S.started_at).label("first_response_seconds"),
        sa.func.avg(_S.ended_at - _S.started_at).label("handling_seconds"),
        sa.func.count(survey_responses.c.session_id).label("surveys"),
        sa.func.avg(survey_responses.c.rating).label("rating"),
        sa.func.avg(sa.case((solved.is_(True), 1.0), (solved.is_(False), 0.0)))
        .label("solved_share"),
        sa.func.count(session_closings.c.id).label("closings"),
        sa.func.avg(sa.case((resolved.is_(True), 1.0), (resolved.is_(False), 0.0)))
        .label("resolved_share"),
    ).select_from(joined).where(*where).group_by(key))


def category_figures(query: ReportQuery) -> sa.Select[Any]:
    """Per category (NULL: none chosen) of the sessions' closing forms, whatever the
    query's grouping: sessions and their resolved share."""
    newest = (sa.select(sa.func.max(session_closings.c.id))
              .where(session_closings.c.session_id == _S.id)
              .correlate(sessions).scalar_subquery())
    where = [_in_range(_S.created_at, query)]
    if query.technician_id is not None:
        where.append(_S.technician_id == query.technician_id)
    if query.team_id is not None:
        where.append(_team_of(_S.technician_id, query.team_id))
    closing = session_closings.c
    return (sa.select(
        closing.category.label("bucket"),
        sa.func.count().label("sessions"),
        sa.func.avg(sa.case((closing.resolved.is_(True), 1.0),
                            (closing.resolved.is_(False), 0.0))).label("resolved_share"),
    ).select_from(sessions.join(session_closings, closing.id == newest))
        .where(*where).group_by(closing.category))


def handover_figures(query: ReportQuery) -> sa.Select[Any]:
    giver = _H.from_technician_id
    where = [_H.state == HandoffState.ACCEPTED.value, giver.is_not(None),
             _in_range(_H.decided_at, query)]
    source: sa.FromClause = handoffs
    key: sa.ColumnElement[Any]
    if query.grouping is Grouping.DAY:
        key = query.days.number(_H.decided_at)
    elif query.grouping is Grouping.TECHNICIAN:
        key = giver
    else:
        source = handoffs.join(team_members, team_members.c.technician_id == giver)
        key = team_members.c.team_id
    if query.technician_id is not None:
        where.append(giver == query.technician_id)
    if query.team_id is not None:
        where.append(_team_of(giver, query.team_id))
    return (sa.select(key.label("bucket"), sa.func.count().label("handed_over"))
            .select_from(source).where(*where).group_by(key))


def request_figures(query: ReportQuery) -> sa.Select[Any]:
    taken = _H.state == HandoffState.ACCEPTED.value
    taker = sa.func.coalesce(sa.case((taken, _H.decided_by)), _R.answered_by)
    where = [_in_range(_R.created_at, query)]
    key: sa.ColumnElement[Any]
    if query.grouping is Grouping.DAY:
        key = query.days.number(_R.created_at)
    elif query.grouping is Grouping.TECHNICIAN:
        key = taker
    else:
        key = _R.team_id
    if query.technician_id is not None:
        where.append(taker == query.technician_id)
    if query.team_id is not None:
        where.append(_R.team_id == query.team_id)
    return (sa.select(
        key.label("bucket"),
        sa.func.count().label("requests"),
        sa.func.avg(sa.case((taken, _H.decided_at - _R.created_at))).label("queue_wait_seconds"),
        sa.func.count(_R.breached_at).label("breaches"),
    ).select_from(intake_requests.outerjoin(handoffs, _H.id == _R.handoff_id))
        .where(*where).group_by(key))
