"""The supervisor board's socket (docs/supervision.md)."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import Message, client_message, server_message


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class SupervisionUpdate(Message):
    """Supervision socket only: a session on the supervisor's board changed (an ended one
    leaves the board). `entry` is one entry of `GET /api/v1/supervision`."""

    TYPE = "supervision.update"
    entry: dict[str, Any]


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class SupervisorWatching(Message):
    """Session socket, to the session's technicians only: a supervisor started
    (`watching` true) or stopped watching the session read-only. Not stored; the audit log
    keeps both."""

    TYPE = "supervisor.watching"
    supervisor: dict[str, Any]
    watching: bool


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class SupervisionNotice(Message):
    """Session socket, to the end user only, and only when the operator's setting
    `supervision_tell_end_user` is on: a supervisor started (`watching` true) or stopped
    watching the session. One frame per watch, without the supervisor's name; with
    several supervisors watching, the page counts. Not stored."""

    TYPE = "supervision.notice"
    watching: bool


# -- The shared screen for a watching supervisor (docs/supervision.md, "The shared screen") --
# The technician's page that receives (or shows) the screen sends it on to the watching
# supervisor's page over a second peer connection; these frames are that connection's
# signaling, relayed by the broker between the watch socket and the technician's session
# socket, never stored and never sent to the end user. `id` names one relay: the broker
# makes it for each `watch.ready`, bound to the session and the watch socket.


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class WatchReady(Message):
    """Watch socket only: the supervisor's page wants the screen shared now (`share`, the
    live share's id) on a fresh peer connection. Answered with `watch.config`; the
    technician's page gets `watch.peer_ready`."""

    TYPE = "watch.ready"
    share: str


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class WatchConfig(Message):
    """Watch socket: the new relay's id and the supervisor's RTCConfiguration for it; the
    technician's offer follows."""

    TYPE = "watch.config"
    id: str
    share: str
    ice_servers: list[dict[str, Any]]
    ice_transport_policy: str
    expires_at: str | None


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class WatchPeerReady(Message):
    """Session socket, to the technician's side of the live share only: a supervisor
    watching the session waits for the screen; offer it to them on a new connection."""

    TYPE = "watch.peer_ready"
    id: str
    share: str
    supervisor: dict[str, Any]


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class WatchOffer(Message):
    """From the technician's page: the relay's offer (video only, sent one way)."""

    TYPE = "watch.offer"
    id: str
    sdp: str


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class WatchAnswer(Message):
    """From the supervisor's page (watch socket): the answer to `watch.offer`."""

    TYPE = "watch.answer"
    id: str
    sdp: str


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class WatchCandidate(Message):
    """A trickled ICE candidate of the relay, either way; as `rtc.candidate`."""

    TYPE = "watch.candidate"
    id: str
    candidate: str
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class WatchStop(Message):
    """Either side closed the relay (`reason` as for `share.stop`); the broker sends it to
    the technician's page with `left` when the supervisor's watch socket closes."""

    TYPE = "watch.stop"
    id: str
    reason: str = "stopped"


# The relay's signaling, passed between the two pages unchanged.
RELAYED: tuple[type[Message], ...] = (WatchOffer, WatchAnswer, WatchCandidate, WatchStop)
