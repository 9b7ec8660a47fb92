"""The words of each session, for searching its history: chat lines, the end user's name,
the notes and the transfer notes.

Every text is stored in `session_texts` as its words only: Unicode letters and digits,
compatibility-normalised (NFKC) and case-folded, separated by single spaces. Both
databases then see the same words whatever their own tokenizers would make of e-mail
addresses, hyphens or a database locale: SQLite's FTS5 (``unicode61``) and PostgreSQL's
``to_tsvector('simple', ...)`` split such text exactly at the spaces. A search term
matches a word equal to it or, from three characters on, a word that begins with it.

Rows are written where the texts are, through `insert`: names by the journal's writer in
the transaction that stores their events, notes by the session service and transfer notes
by the handoff service; chat lines too on PostgreSQL, which indexes each row as it is
inserted.

SQLite gets its chat lines' rows, and its FTS5 index all rows, in bulk from `catch_up`,
which reads what was stored after its marks (the table `search_indexed`, migration 0021):
the events after `events_up_to` (a chat line's row and its index entry, written in each
small group commit, made that commit cost about a quarter more CPU, docs/benchmarks.md),
and the texts after `up_to`. Its cost is small in bulk (11–15 µs per chat line), but
it pauses the event loop: the journal's writer catches up, CATCH_UP_EVENTS at a time, when
no event came for QUIET_SECONDS, and as it writes only when more than CATCH_UP_BACKLOG
events wait. Every search catches up first, so a search finds every stored chat line (after
a long busy spell, that search waits for the backlog).

Every text up to the mark is indexed and none after it; `replace`, the one place that
deletes texts, catches up before it deletes (the index drops what the trigger of migration
0013 removes) and moves the mark down to the last row left, as SQLite numbers the next
row on from there.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from ..schema import events, session_texts, sessions

_WORD = re.compile(r"[^\W_]+")
MAX_TERMS = 8
MAX_TERM_LENGTH = 64
PREFIX_FROM = 3  # shorter terms match whole words only: "a*" would match nearly everything

QUIET_SECONDS = 0.05  # SQLite: the journal's writer catches up once no event came this long
CATCH_UP_BACKLOG = 20_000  # events waiting: then it catches up as it writes, too
CATCH_UP_EVENTS = 200  # events read by one catch-up of the journal's writer
INSERT = session_texts.insert()
_ROWID: sa.ColumnClause[Any] = sa.literal_column("events.rowid")  # SQLite: the storing order
_MARKS = sa.text("SELECT events_up_to, up_to FROM search_indexed")
# The texts after the mark into the index, then the marks to the last rows read.
_INDEX_PENDING = sa.text("INSERT INTO session_texts_fts (rowid, body) SELECT id, body "
                         "FROM session_texts WHERE id > (SELECT up_to FROM search_indexed)")
_MARK = sa.text("UPDATE search_indexed SET up_to = "
                "(SELECT coalesce(max(id), 0) FROM session_texts)")
_MARK_EVENTS = sa.text("UPDATE search_indexed SET events_up_to = :up_to")
_FTS = sa.table("session_texts_fts", sa.column("rowid"), sa.column("session_texts_fts"))
_VOCAB = sa.table("session_texts_vocab", sa.column("term"), sa.column("doc"))
_SIMPLE: sa.ColumnClause[Any] = sa.literal_column("'simple'::regconfig")
_DOC: sa.ColumnClause[Any] = sa.literal_column("session_texts.doc")  # PostgreSQL only
_POSTGRESQL_STATISTICS = sa.text(
    "SELECT s.most_common_elems::text::text[] AS words, s.most_common_elem_freqs AS shares, "
    "c.reltuples AS texts FROM pg_stats s JOIN pg_class c ON c.oid = 'session_texts'::regclass "
    "WHERE s.schemaname = current_schema() AND s.tablename = 'session_texts' "
    "AND s.attname = 'doc'")


def words(text: str) -> str:
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def terms(query: str) -> tuple[str, ...]:
    """The distinct search terms of what someone typed, at most MAX_TERMS."""
    found: list[str] = []
    for term in words(query).split():
        term = term[:MAX_TERM_LENGTH]
        if term not in found:
            found.append(term)
    return tuple(found[:MAX_TERMS])


def row(session_id: str, kind: str, text: str) -> dict[str, Any] | None:
    body = words(text)
    return {"session_id": session_id, "kind": kind, "body": body} if body else None


def message_row(session_id: str, body: str) -> dict[str, Any] | None:
    """The row of a chat line, from its event's stored body."""
    text = json.loads(body).get("data", {}).get("text")
    return row(session_id, "message", text) if isinstance(text, str) else None


def event_rows(session_id: str, type: str, data: dict[str, Any],
               columns: dict[str, Any] | None, *, messages: bool) -> list[dict[str, Any]]:
    """What a journal event adds to the index: an end user's name, and with `messages` a
    chat line's text (SQLite's `catch_up` reads those from the events)."""
    found = []
    if messages and type == "message" and isinstance(data.get("text"), str):
        found.append(row(session_id, "message", data["text"]))
    name = (columns or {}).get("end_user_name")
    if isinstance(name, str):
        found.append(row(session_id, "name", name))
    return [r for r in found if r is not None]


async def insert(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Store texts (rows of `row` or `event_rows`); SQLite indexes them at its next
    `catch_up`."""
    if rows:
        await conn.execute(INSERT, rows)  # PostgreSQL: the generated column and GIN follow


async def catch_up(conn: AsyncConnection, most: int | None = None) -> bool:
    """SQLite: store the texts of the chat lines stored since the last catch-up (at most
    `most` events' worth) and index every text waiting. False if events are left for
    the next one. PostgreSQL has done all this already."""
    if conn.dialect.name != "sqlite":
        return True
    events_up_to = (await conn.execute(_MARKS)).one().events_up_to
    query = (sa.select(_ROWID.label("position"), events.c.session_id, events.c.type,
                       events.c.body)
             .where(_ROWID > events_up_to).order_by(_ROWID).limit(most or -1))
    read = (await conn.execute(query)).all()
    if read:
        await insert(conn, [line for e in read if e.type == "message" and (
            line := message_row(e.session_id, e.body)) is not None])
        await conn.execute(_MARK_EVENTS, {"up_to": read[-1].position})
    await conn.execute(_INDEX_PENDING)
    await conn.execute(_MARK)
    return most is None or len(read) < most


async def add(conn: AsyncConnection, session_id: str, kind: str, text: str) -> None:
    found = row(session_id, kind, text)
    if found is not None:
        await insert(conn, [found])


async def replace(conn: AsyncConnection, session_id: str, kind: str, text: str) -> None:
    """The session's one text of this kind (its notes) is now `text`."""
    await catch_up(conn)  # what the trigger removes from the index must be in it
    await conn.execute(session_texts.delete().where(session_texts.c.session_id == session_id,
                                                    session_texts.c.kind == kind))
    if conn.dialect.name == "sqlite":
        await conn.execute(_MARK)  # the next row is numbered on from the last one left
    await add(conn, session_id, kind, text)


# How a term's sessions are found. A rare term's are collected from the index first
# (cost: its matches, all of which are then read and sorted); a frequent one is checked
# session by session while sessions are read newest first, which stops after a page
# (cost: the sessions read until then; all of them when no session matches). Rare: found
# in at most COLLECT_AT_MOST texts. Several terms may be rare together however frequent
# each is: they are collected while their texts add up to at most TOGETHER times that
# (docs/benchmarks.md, "Session history").
COLLECT_AT_MOST = 5_000
TOGETHER = 12


async def conditions(conn: AsyncConnection, terms: tuple[str, ...],
                     collect_at_most: int = COLLECT_AT_MOST) -> list[sa.ColumnElement[bool]]:
    """What `sessions` rows must satisfy to have a text matching every term."""
    if not terms:
        return []
    if conn.dialect.name == "postgresql":
        return await _postgresql_conditions(conn, terms, collect_at_most)
    counts = sorted([(await _sqlite_rows_with(conn, term), term) for term in terms])
    if counts[0][0] == 0:
        return [sa.false()]
    if counts[0][0] <= collect_at_most:
        collect, check = counts[:1], counts[1:]
    elif len(counts) > 1 and sum(count for count, _ in counts) <= collect_at_most * TOGETHER:
        collect, check = counts, []
    else:
        collect, check = [], counts
    found: list[sa.ColumnElement[bool]] = [
        sessions.c.id.in_(sa.select(session_texts.c.session_id).where(
            session_texts.c.id.in_(sa.select(_FTS.c.rowid).where(_sqlite_match(term)))))
        for _, term in collect]
    # Checked row by row on the stored words (a few microseconds a row), not through the
    # full-text index, whose query set-up would be paid for every row.
    found += [sa.exists().where(session_texts.c.session_id == sessions.c.id,
                                _sqlite_words_match(term)) for _, term in check]
    return found


async def _postgresql_conditions(conn: AsyncConnection, terms: tuple[str, ...],
                                 collect_at_most: int) -> list[sa.ColumnElement[bool]]:
    """As for SQLite. How frequent a word is, PostgreSQL's statistics say for the commonest
    words (about 1 % of texts and more); other words are collected, up to a fifth as many
    texts as SQLite collects (each is a visit to its row; no DISTINCT, which would read
    every match before the limit applies). The planner's own estimates for prefix
    searches are too rough to leave it the choice: it once checked 100,000 sessions one by
    one for a word found in one."""
    estimates = await _postgresql_estimates(conn, terms)
    found: list[set[str]] = []
    frequent: list[str] = []
    for term in terms:
        ids = None
        if estimates.get(term, 0) <= collect_at_most // 5:
            ids = await _postgresql_sessions_of(conn, term, collect_at_most // 5)
        if ids is None:
            frequent.append(term)
        elif not ids:
            return [sa.false()]
        else:
            found.append(ids)
    budget = collect_at_most * TOGETHER
    if not found and len(frequent) > 1 and sum(
            estimates.get(term, budget) for term in frequent) <= budget:
        for term in frequent:  # rare together, however frequent each is?
            ids = await _postgresql_sessions_of(conn, term, budget)
            if ids is None:
                found = []
                break
            found.append(ids)
        else:
            frequent = []
    conditions: list[sa.ColumnElement[bool]] = []
    if found:
        together = set.intersection(*found)
        if not together:
            return [sa.false()]
        conditions.append(sessions.c.id == sa.any_(sa.literal(  # one parameter, however many
            sorted(together), postgresql.ARRAY(sa.String(32)))))
    conditions += [sa.exists().where(session_texts.c.session_id == sessions.c.id,
                                     _postgresql_match(term)) for term in frequent]
    return conditions


async def _postgresql_estimates(conn: AsyncConnection, terms: tuple[str, ...]
                                ) -> dict[str, float]:
    """Texts per term, for the terms whose words ANALYZE lists among the commonest."""
    row = (await conn.execute(_POSTGRESQL_STATISTICS)).first()
    if row is None or not row.words or not row.texts or row.texts <= 0:
        return {}
    shares = dict(zip(row.words, row.shares, strict=False))
    estimates = {}
    for term in terms:
        share = sum(value for word, value in shares.items()
                    if word == term or (_prefix(term) and word.startswith(term)))
        if share:
            estimates[term] = share * row.texts
    return estimates


async def _postgresql_sessions_of(conn: AsyncConnection, term: str,
                                  at_most: int) -> set[str] | None:
    """The sessions with a text matching `term`, if at most `at_most` texts do."""
    rows = (await conn.scalars(sa.select(session_texts.c.session_id).where(
        _postgresql_match(term)).limit(at_most + 1))).all()
    return None if len(rows) > at_most else set(rows)


def _prefix(term: str) -> bool:
    return len(term) >= PREFIX_FROM


def _postgresql_match(term: str) -> sa.ColumnElement[bool]:
    query = sa.func.to_tsquery(_SIMPLE, f"{term}:*" if _prefix(term) else term)
    return _DOC.op("@@")(query)


def _sqlite_match(term: str) -> sa.ColumnElement[bool]:
    pattern = f'"{term}"*' if _prefix(term) else f'"{term}"'
    return _FTS.c.session_texts_fts.op("MATCH")(pattern)


def _sqlite_words_match(term: str) -> sa.ColumnElement[bool]:
    """The stored words hold `term` (as a word, or from three characters as the start of
    one). Words and terms are letters and digits only: no LIKE wildcard among them."""
    spaced = sa.literal(" ") + session_texts.c.body
    if _prefix(term):
        return spaced.like(f"% {term}%")
    return (spaced + sa.literal(" ")).like(f"% {term} %")


async def _sqlite_rows_with(conn: AsyncConnection, term: str) -> int:
    """How many texts have a word matching `term`, from the index's vocabulary."""
    if _prefix(term):
        upper = term[:-1] + chr(ord(term[-1]) + 1)
        where = sa.and_(_VOCAB.c.term >= term, _VOCAB.c.term < upper)
    else:
        where = _VOCAB.c.term == term
    return int(await conn.scalar(sa.select(sa.func.coalesce(sa.func.sum(_VOCAB.c.doc), 0))
                                 .where(where)) or 0)
