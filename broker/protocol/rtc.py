"""Screen sharing: the share's life (request, consent, start, pause, resume, stop), and the
WebRTC signaling between its two peers (offer, answer, ICE candidates, restarts).

`share.*` frames change a share; each change is stored as an event of the session (the
`share.*` events of docs/protocol.md), so both pages learn of it, in order, also after a
reconnect. `rtc.*` frames are signaling: relayed to the other peer of the share, never
stored, and held for that peer while it is not ready. In every frame `id` is the share's
id, so an `error` about it names it in `ref`.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from . import Message, client_message, server_message

# -- The share's vocabulary: the states its events move it through ------------------------
#
#     requested ──consent──▶ consented ──start──▶ active ◀──resume/pause──▶ paused
#         │                      │                  │                          │
#         └──refuse──▶ refused   └──────────────────┴────── stop ─────────────┴──▶ stopped
#
# The broker keeps the machine (broker/rtc/model.py); the agent and the pages rebuild a
# share's state from its events with the same names (web/static/protocol.js).


class Direction(enum.StrEnum):
    END_USER_TO_TECHNICIAN = "end_user_to_technician"   # the technician views
    TECHNICIAN_TO_END_USER = "technician_to_end_user"   # the technician shows


class Source(enum.StrEnum):
    """What captures the sharing side's screen: the browser (getDisplayMedia) or the
    native agent. Signaling is the same for both."""

    BROWSER = "browser"
    AGENT = "agent"


class ShareState(enum.StrEnum):
    REQUESTED = "requested"
    CONSENTED = "consented"
    ACTIVE = "active"
    PAUSED = "paused"
    REFUSED = "refused"
    STOPPED = "stopped"

    @property
    def live(self) -> bool:
        return self not in (ShareState.REFUSED, ShareState.STOPPED)

    @property
    def signaling(self) -> bool:
        """Whether the two peers may exchange signaling: only after consent."""
        return self in (ShareState.CONSENTED, ShareState.ACTIVE, ShareState.PAUSED)

    @classmethod
    def first(cls, direction: Direction) -> ShareState:
        """A new share's state: the one who shows is the one who asked, so a technician's
        own screen needs no consent."""
        return (cls.CONSENTED if direction is Direction.TECHNICIAN_TO_END_USER
                else cls.REQUESTED)


TRANSITIONS: dict[ShareState, frozenset[ShareState]] = {
    ShareState.REQUESTED: frozenset({ShareState.CONSENTED, ShareState.REFUSED,
                                     ShareState.STOPPED}),
    ShareState.CONSENTED: frozenset({ShareState.ACTIVE, ShareState.STOPPED}),
    ShareState.ACTIVE: frozenset({ShareState.PAUSED, ShareState.STOPPED}),
    ShareState.PAUSED: frozenset({ShareState.ACTIVE, ShareState.STOPPED}),
    ShareState.REFUSED: frozenset(),
    ShareState.STOPPED: frozenset(),
}

# The state each share.* event leaves its share in.
SHARE_EVENTS: dict[str, ShareState] = {
    "share.requested": ShareState.REQUESTED, "share.consented": ShareState.CONSENTED,
    "share.refused": ShareState.REFUSED, "share.started": ShareState.ACTIVE,
    "share.paused": ShareState.PAUSED, "share.resumed": ShareState.ACTIVE,
    "share.stopped": ShareState.STOPPED,
}


class ControlState(enum.StrEnum):
    """Remote control of an agent share: asked for by the viewer, granted by the person at
    the shared computer (through the agent), ended by either side at any time.

        none ──request──▶ requested ──grant──▶ granted
         ▲                    │                   │
         └──── refuse / stop ─┴────── stop ───────┘
    """

    NONE = "none"
    REQUESTED = "requested"
    GRANTED = "granted"


CONTROL_TRANSITIONS: dict[ControlState, frozenset[ControlState]] = {
    ControlState.NONE: frozenset({ControlState.REQUESTED}),
    ControlState.REQUESTED: frozenset({ControlState.GRANTED, ControlState.NONE}),
    ControlState.GRANTED: frozenset({ControlState.NONE}),
}


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class ShareRequest(Message):
    """The technician asks to see the end user's screen (`end_user_to_technician`) or
    starts showing their own (`technician_to_end_user`). `id` is chosen by the client."""

    TYPE = "share.request"
    id: str
    direction: str = "end_user_to_technician"
    source: str = "browser"


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class ShareConsent(Message):
    """The sharing side's answer to a request: `accept` true shares, false refuses."""

    TYPE = "share.consent"
    id: str
    accept: bool


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class ShareStart(Message):
    """The sharing side has its screen captured and is about to send it."""

    TYPE = "share.start"
    id: str


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class SharePause(Message):
    TYPE = "share.pause"
    id: str


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class ShareResume(Message):
    TYPE = "share.resume"
    id: str


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class ShareStop(Message):
    """Either peer ends the share (the requester also withdraws a request with it)."""

    TYPE = "share.stop"
    id: str
    reason: str = "stopped"


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class RtcReady(Message):
    """This peer can take signaling for the share now; queued frames follow. `fresh`: it
    has a new peer connection and needs a (new) offer; false when it only reconnected."""

    TYPE = "rtc.ready"
    id: str
    fresh: bool = True


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class RtcOffer(Message):
    """From the sharing side. `restart` marks an ICE restart."""

    TYPE = "rtc.offer"
    id: str
    sdp: str
    restart: bool = False


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class RtcAnswer(Message):
    """From the viewing side."""

    TYPE = "rtc.answer"
    id: str
    sdp: str


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class RtcCandidate(Message):
    """A trickled ICE candidate, as RTCIceCandidate.candidate ("candidate:…"); "" ends
    the candidates of that media section."""

    TYPE = "rtc.candidate"
    id: str
    candidate: str
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class RtcRestart(Message):
    """From the viewing side: media failed, please make an ICE restart offer."""

    TYPE = "rtc.restart"
    id: str


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class RtcConfig(Message):
    """The answer to rtc.ready: this participant's RTCConfiguration for the share."""

    TYPE = "rtc.config"
    id: str
    ice_servers: list[dict[str, Any]]
    ice_transport_policy: str
    expires_at: str | None


@server_message
@dataclasses.dataclass(frozen=True, slots=True)
class RtcPeerReady(Message):
    """To the sharing side: the viewer has a fresh peer connection; send it an offer."""

    TYPE = "rtc.peer_ready"
    id: str


# The signaling the broker passes from one peer of a share to the other, unchanged.
RELAYED: tuple[type[Message], ...] = (RtcOffer, RtcAnswer, RtcCandidate, RtcRestart)


# -- Remote control (only for shares whose source is the agent) ---------------------------
# Consent travels here, through the broker, and is stored as events; the mouse and keyboard
# events themselves travel on a WebRTC data channel between the two peers (docs/agent.md).


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class ControlRequest(Message):
    """The viewer of an agent share asks to control the end user's mouse and keyboard."""

    TYPE = "control.request"
    id: str


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class ControlConsent(Message):
    """The sharing side (the agent, asking the person at that computer) answers."""

    TYPE = "control.consent"
    id: str
    accept: bool


@client_message
@dataclasses.dataclass(frozen=True, slots=True)
class ControlStop(Message):
    """Either peer ends control (or withdraws a request); `reason` as for share.stop."""

    TYPE = "control.stop"
    id: str
    reason: str = "stopped"
