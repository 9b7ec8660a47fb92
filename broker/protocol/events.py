"""The stored events' kinds: for each event type, the fields of its own (its payload).

Every event of a session is stored with a type and a JSON object of its own fields, and
sent to the pages flat beside ``seq``, ``type``, ``at`` and ``author`` (docs/protocol.md,
"Events"). Each type is declared here once, as a frozen dataclass: its fields, their
types, and which of them are times (`Time`: stored as epoch seconds, sent as ISO 8601).
The journal refuses to store an event whose type or payload is not declared, so a new kind
of event is written down here before anything can store it; `web/views.py` formats times
by these declarations, and the pages get the names from the generated protocol.js.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, NewType, TypeVar

from . import _fields

Time = NewType("Time", float)  # seconds since the epoch; ISO 8601 on the wire


class EventData:
    """Base of every event kind: a frozen dataclass of the event's own fields."""

    TYPE: ClassVar[str]


EVENTS: dict[str, type[EventData]] = {}
E = TypeVar("E", bound=type[EventData])


def event_kind(cls: E) -> E:
    if cls.TYPE in EVENTS:
        raise ValueError(f"two event kinds are called {cls.TYPE!r}")
    EVENTS[cls.TYPE] = cls
    return cls


# -- a session's life -----------------------------------------------------------------------


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class Created(EventData):
    """The technician made the session; its key expires at `expires_at`."""

    TYPE = "created"
    expires_at: Time


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class Joined(EventData):
    TYPE = "joined"


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class ChatMessage(EventData):
    """A chat line. `open_url`: a technician's ``open: <address>`` line, the http(s)
    address the end user's page opens; `goto_url`: a ``goto: <address>`` line, the
    address the website around an embedded chat goes to (broker/sessions/webpage.py)."""

    TYPE = "message"
    text: str
    open_url: str | None = None
    goto_url: str | None = None


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class Disconnected(EventData):
    """The end user is gone (`connection_lost`, `broker_restart`); the session ends at
    `deadline` unless they are back."""

    TYPE = "disconnected"
    reason: str
    deadline: Time


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class Reconnected(EventData):
    TYPE = "reconnected"


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class Ended(EventData):
    TYPE = "ended"
    reason: str


# -- technicians ----------------------------------------------------------------------------


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class HandedOver(EventData):
    """The session passed from one technician to another; `stays`: the sender stays in it
    as a guest. `reason` only when the broker did it (`owner_gone`) or a supervisor took
    the session over (`taken_over`, docs/supervision.md). A customer's request
    taken from a queue comes from the queue: `from` is the team's name, `from_id` null."""

    TYPE = "handed_over"
    from_: str = dataclasses.field(metadata={"name": "from"})
    to: str
    from_id: int | None
    to_id: int
    stays: bool
    reason: str | None = None


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class TechnicianJoined(EventData):
    """A technician was invited into the session as a guest; `supervisor`: a supervisor
    joined by themselves from the board (docs/supervision.md)."""

    TYPE = "technician_joined"
    name: str
    supervisor: bool = False


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class TechnicianLeft(EventData):
    TYPE = "technician_left"
    name: str
    id: int


# -- customers' requests (broker/intake) -----------------------------------------------------


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class RequestOpened(EventData):
    """The customer asked for help through the portal: the session waits in `team`'s
    queue; the first answer is due at `due_at` (the target of `severity`)."""

    TYPE = "request.opened"
    team: str
    severity: str
    due_at: Time


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class RequestBreached(EventData):
    """No technician wrote in the chat before `due_at`: the first-response target of
    `severity` (`target_seconds`, counted in business hours if `business_hours`) was
    missed."""

    TYPE = "request.breached"
    severity: str
    due_at: Time
    target_seconds: int
    business_hours: bool


# -- after the end (broker/survey) ------------------------------------------------------------


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class SurveyCompleted(EventData):
    """The end user answered the survey after the session ended: a `rating` from 1 to 5,
    whether the problem was `solved`, a `comment`; None where they gave no answer."""

    TYPE = "survey.completed"
    rating: int | None = None
    solved: bool | None = None
    comment: str | None = None


# -- the agent, screen sharing and remote control -------------------------------------------


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class AgentConnected(EventData):
    TYPE = "agent.connected"
    version: str
    platform: str


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class AgentDisconnected(EventData):
    TYPE = "agent.disconnected"


@dataclasses.dataclass(frozen=True, slots=True)
class ShareEvent(EventData):
    """The fields every share.* and control.* event carries (the share as it is now)."""

    share_id: str
    direction: str
    source: str
    sharer: str
    viewer: str
    sharer_name: str
    viewer_name: str
    control: str


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class ShareRequested(ShareEvent):
    TYPE = "share.requested"


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class ShareConsented(ShareEvent):
    TYPE = "share.consented"


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class ShareRefused(ShareEvent):
    TYPE = "share.refused"


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class ShareStarted(ShareEvent):
    TYPE = "share.started"


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class SharePaused(ShareEvent):
    TYPE = "share.paused"


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class ShareResumed(ShareEvent):
    TYPE = "share.resumed"


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class ShareStopped(ShareEvent):
    TYPE = "share.stopped"
    reason: str


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class ControlRequested(ShareEvent):
    TYPE = "control.requested"


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class ControlGranted(ShareEvent):
    TYPE = "control.granted"


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class ControlRefused(ShareEvent):
    TYPE = "control.refused"


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class ControlStopped(ShareEvent):
    TYPE = "control.stopped"
    reason: str


# -- files ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class FileEvent(EventData):
    upload_id: str
    name: str
    size: int


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class FileOffered(FileEvent):
    TYPE = "file.offered"
    content_type: str
    sha256: str
    url: str


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class FileDamaged(FileEvent):
    TYPE = "file.damaged"
    sha256: str
    expected: str | None


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class FileCancelled(FileEvent):
    TYPE = "file.cancelled"
    received: int
    reason: str


@event_kind
@dataclasses.dataclass(frozen=True, slots=True)
class FileRemoved(FileEvent):
    TYPE = "file.removed"
    reason: str


# -- reading the declarations ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Spec:
    """An event kind as its events look: field name -> (type, required), and the times."""

    fields: dict[str, tuple[Any, bool]]
    times: frozenset[str]
    # name -> (the Python types a JSON value of it may have, whether it is required);
    # worked out once, as the journal checks every event it stores.
    accepts: dict[str, tuple[tuple[type, ...], bool]]


def _accepted(hint: Any) -> tuple[type, ...]:
    kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    found: list[type] = []
    for kind in kinds:
        kind = float if kind is Time else kind
        found += [int, float] if kind is float else [typing.get_origin(kind) or kind]
    return tuple(found)


def _spec(kind: type[EventData]) -> Spec:
    # A field's name in the event may differ from the attribute (``from`` is a keyword).
    wire = {field.name: str(field.metadata.get("name", field.name))
            for field in dataclasses.fields(kind)}  # type: ignore[arg-type]
    fields = {wire[name]: (hint, required) for name, hint, required in _fields(kind)}
    return Spec(fields, frozenset(name for name, (hint, _) in fields.items() if hint is Time),
                {name: (_accepted(hint), required) for name, (hint, required) in fields.items()})


SPECS: dict[str, Spec] = {type_name: _spec(kind) for type_name, kind in EVENTS.items()}


def check_event(type_name: str, data: dict[str, Any]) -> None:
    """Raise ValueError unless `data` is the payload of a declared event kind."""
    spec = SPECS.get(type_name)
    if spec is None:
        raise ValueError(f"{type_name!r} is not a declared event kind (broker/protocol/events.py)")
    for name, (accepted, required) in spec.accepts.items():
        if name in data:
            value = data[name]
            # A bool is an int to isinstance, but not a number on the wire.
            if not isinstance(value, accepted) or (isinstance(value, bool)
                                                   and bool not in accepted):
                raise ValueError(f"the event {type_name}: {name} has the wrong type")
        elif required:
            raise ValueError(f"the event {type_name} needs {name}")
    if not data.keys() <= spec.accepts.keys():
        raise ValueError(f"the event {type_name} has undeclared fields "
                         f"{sorted(data.keys() - spec.accepts.keys())}")
