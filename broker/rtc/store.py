"""Shares as stored in the database, which every node reads and writes: one row per share
(its state, and per peer the socket ready for its signaling) and the signaling frames that
wait for a peer without one. The share service (broker/rtc/service.py) and the signaling
(broker/rtc/signaling.py) decide what to change; this module turns rows into shares and
back, and refuses who is not a peer of the share.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import Forbidden, NotFound
from ..protocol import Message, as_dict
from ..protocol.rtc import RtcAnswer, RtcCandidate, RtcOffer, RtcPeerReady, RtcRestart
from ..schema import events, participants, sessions, share_signals, shares
from ..sessions import Actor, Role, SessionState
from .model import ControlState, Direction, Peer, Share, ShareState, Source

# What may be held for a peer, by its type (the frames are stored as their JSON).
HELD: dict[str, type[Message]] = {kind.TYPE: kind for kind in (
    RtcOffer, RtcAnswer, RtcCandidate, RtcRestart, RtcPeerReady)}


@dataclasses.dataclass(slots=True)
class Stored:
    """One share as read from its row, with the row's version and its peers' lines:
    `conns` (sender -> the token of its ready socket) and `readied` (sender -> it had a
    peer connection before). `session_ended` comes from the session's row."""

    share: Share
    version: int
    conns: dict[str, str | None]
    readied: dict[str, bool]
    session_ended: bool
    before: tuple[ShareState, str | None, ControlState]  # as read, to undo a change
    lines_changed: bool = False

    def set_conn(self, sender: str, token: str | None) -> None:
        if self.conns[sender] != token:
            self.conns[sender] = token
            self.lines_changed = True

    def set_readied(self, sender: str) -> None:
        if not self.readied[sender]:
            self.readied[sender] = True
            self.lines_changed = True


def peer_of(stored: Stored | None, actor: Actor) -> Stored:
    """The share as loaded, if it exists and the actor is one of its two sides."""
    if stored is None:
        raise NotFound("No such share in this session.", code="share_unknown")
    if stored.share.peer(actor.sender) is None:
        raise Forbidden("You are not one of the two sides of this share.",
                        code="not_share_peer")
    return stored


def _key(session_id: str, share_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(shares.c.session_id == session_id, shares.c.share_id == share_id)


def _stored(row: Any) -> Stored:
    share = Share.restore(
        row.session_id, row.share_id, Direction(row.direction), Source(row.source),
        Peer(row.sharer, row.sharer_role, row.sharer_name),
        Peer(row.viewer, row.viewer_role, row.viewer_name),
        ShareState(row.state), row.paused_by, ControlState(row.control))
    return Stored(share, int(row.version),
                  {row.sharer: row.sharer_conn, row.viewer: row.viewer_conn},
                  {row.sharer: bool(row.sharer_readied), row.viewer: bool(row.viewer_readied)},
                  row.session_state == SessionState.ENDED.value,
                  (share.state, share.paused_by, share.control))


async def load(conn: AsyncConnection, session_id: str, share_id: str, *,
               lock: bool = False) -> Stored | None:
    """The share, or None. With `lock`, its row stays locked (PostgreSQL) until the
    transaction ends, so that signaling and readiness of one share take turns."""
    query = _with_session_state().where(_key(session_id, share_id))
    if lock:
        query = query.with_for_update(of=shares)
    row = (await conn.execute(query)).first()
    return None if row is None else _stored(row)


async def live(conn: AsyncConnection, session_id: str) -> list[Stored]:
    """The session's live shares (at most one)."""
    rows = (await conn.execute(_with_session_state().where(
        shares.c.session_id == session_id, shares.c.live))).all()
    return [_stored(row) for row in rows]


def _with_session_state() -> sa.Select[Any]:
    """Share rows with their session's state, as `_stored` reads them."""
    return (sa.select(shares, sessions.c.state.label("session_state"))
            .join(sessions, sessions.c.id == shares.c.session_id))


async def taken(conn: AsyncConnection, session_id: str, share_id: str) -> tuple[bool, bool]:
    """Whether the id is taken in the session, and whether a share of it is live."""
    rows = (await conn.execute(
        sa.select(shares.c.share_id, shares.c.live)
        .where(shares.c.session_id == session_id,
               sa.or_(shares.c.share_id == share_id, shares.c.live)))).all()
    return any(r.share_id == share_id for r in rows), any(r.live for r in rows)


def _state_values(share: Share) -> dict[str, Any]:
    return {"state": share.state.value, "paused_by": share.paused_by,
            "control": share.control.value, "live": share.state.live}


async def insert(conn: AsyncConnection, share: Share, now: float) -> None:
    """A new share (raises IntegrityError if the id is taken or another share is live)."""
    await conn.execute(shares.insert().values(
        session_id=share.session_id, share_id=share.id, direction=share.direction.value,
        source=share.source.value,
        sharer=share.sharer.sender, sharer_role=share.sharer.role,
        sharer_name=share.sharer.name,
        viewer=share.viewer.sender, viewer_role=share.viewer.role,
        viewer_name=share.viewer.name,
        version=1, sharer_conn=None, sharer_readied=False, viewer_conn=None,
        viewer_readied=False, created_at=now, updated_at=now, **_state_values(share)))


async def delete(conn: AsyncConnection, share: Share) -> None:
    await conn.execute(shares.delete().where(_key(share.session_id, share.id)))


async def save(conn: AsyncConnection, share: Share, version: int, now: float) -> bool:
    """Store the share's state if its row is still at `version` (then at version + 1).
    False if another change came first. An ended share holds nothing for anyone."""
    result = await conn.execute(
        shares.update().where(_key(share.session_id, share.id), shares.c.version == version)
        .values(version=version + 1, updated_at=now, **_state_values(share)))
    if result.rowcount != 1:
        return False
    if not share.state.live:
        await drop_held(conn, share)
        await conn.execute(shares.update().where(_key(share.session_id, share.id))
                           .values(sharer_conn=None, viewer_conn=None))
    return True


async def save_lines(conn: AsyncConnection, stored: Stored) -> None:
    """The peers' ready sockets and readiness, if they changed (the row is locked)."""
    if not stored.lines_changed:
        return
    share = stored.share
    await conn.execute(shares.update().where(_key(share.session_id, share.id)).values(
        sharer_conn=stored.conns[share.sharer.sender],
        sharer_readied=stored.readied[share.sharer.sender],
        viewer_conn=stored.conns[share.viewer.sender],
        viewer_readied=stored.readied[share.viewer.sender]))
    stored.lines_changed = False


async def clear_conns(conn: AsyncConnection, tokens: list[str]) -> None:
    """These sockets closed: what comes for their peers is held again."""
    for column in (shares.c.sharer_conn, shares.c.viewer_conn):
        await conn.execute(shares.update().where(column.in_(tokens)).values({column: None}))


async def clear_conns_of(conn: AsyncConnection, prefix: str) -> None:
    """Every socket of one node process (it stops)."""
    for column in (shares.c.sharer_conn, shares.c.viewer_conn):
        await conn.execute(shares.update().where(column.startswith(prefix, autoescape=True))
                           .values({column: None}))


def _line(share: Share, recipient: str | None = None) -> sa.ColumnElement[bool]:
    where = sa.and_(share_signals.c.session_id == share.session_id,
                    share_signals.c.share_id == share.id)
    return where if recipient is None else sa.and_(where,
                                                   share_signals.c.recipient == recipient)


async def hold(conn: AsyncConnection, share: Share, recipient: str, frame: Message,
               now: float) -> None:
    await conn.execute(share_signals.insert().values(
        session_id=share.session_id, share_id=share.id, recipient=recipient, type=frame.TYPE,
        frame=json.dumps(as_dict(frame), separators=(",", ":")), created_at=now))


async def held_count(conn: AsyncConnection, share: Share, recipient: str) -> int:
    return int(await conn.scalar(sa.select(sa.func.count()).select_from(share_signals)
                                 .where(_line(share, recipient))) or 0)


async def holds(conn: AsyncConnection, share: Share, recipient: str, kind: str) -> bool:
    found = await conn.scalar(sa.select(share_signals.c.id).where(
        _line(share, recipient), share_signals.c.type == kind).limit(1))
    return found is not None


async def take_held(conn: AsyncConnection, share: Share, recipient: str) -> list[Message]:
    """What waits for the peer, in the order it came; it no longer waits."""
    rows = (await conn.execute(sa.select(share_signals.c.frame).where(
        _line(share, recipient)).order_by(share_signals.c.id))).all()
    if rows:
        await drop_held(conn, share, recipient)
    frames = []
    for row in rows:
        data = json.loads(row.frame)
        frames.append(HELD[data.pop("type")](**data))
    return frames


async def drop_held(conn: AsyncConnection, share: Share, recipient: str | None = None,
                    kinds: tuple[type[Message], ...] = ()) -> None:
    """Drop what waits (for one peer; only of some kinds)."""
    where = _line(share, recipient)
    if kinds:
        where = sa.and_(where, share_signals.c.type.in_([kind.TYPE for kind in kinds]))
    await conn.execute(share_signals.delete().where(where))


async def agent_of(conn: AsyncConnection, session_id: str) -> Peer | None:
    """The participant that said agent.hello last in the session: its native agent (also
    while it reconnects)."""
    sender = await conn.scalar(
        sa.select(events.c.sender).where(events.c.session_id == session_id,
                                         events.c.type == "agent.connected")
        .order_by(events.c.seq.desc()).limit(1))
    participant_id = _participant_id(sender)
    if participant_id is None:
        return None
    name = await conn.scalar(sa.select(participants.c.display_name).where(
        participants.c.id == participant_id, participants.c.session_id == session_id))
    if name is None:
        return None
    return Peer.of(Actor(Role.END_USER, participant_id, str(name)))


async def end_user(conn: AsyncConnection, session_id: str,
                   besides: str | None = None) -> Peer | None:
    """The session's newest end-user participant (other than `besides`)."""
    query = (sa.select(participants.c.id, participants.c.display_name)
             .where(participants.c.session_id == session_id,
                    participants.c.role == Role.END_USER.value)
             .order_by(participants.c.id.desc()).limit(1))
    other = _participant_id(besides)
    if other is not None:
        query = query.where(participants.c.id != other)
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return Peer.of(Actor(Role.END_USER, row.id, row.display_name))


def _participant_id(sender: object) -> int | None:
    """The participant a sender name ("p<id>", see `Actor.sender`) stands for, if one."""
    if isinstance(sender, str) and sender.startswith("p") and sender[1:].isdigit():
        return int(sender[1:])
    return None
