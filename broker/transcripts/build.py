"""A session's readable transcript: its events as sentences in the reader's language, at
times in the reader's time zone, grouped by day, with the session's notes and every
transfer's note (for its technicians), and the end user's survey and the technicians'
closing form at the end. The page
`/sessions/{id}/transcript`, the exports (`GET /api/v1/sessions/{id}/transcript`, text
and HTML) and the emailed copies (broker/transcriptmail) render the same `Transcript`.

A copy for the end user (`for_end_user`) leaves out what only technicians read: their
notes, the transfers' notes, the transfers that did not happen and the closing form.
"""

from __future__ import annotations

import dataclasses
import re
import zoneinfo
from datetime import UTC, datetime, tzinfo

from babel.dates import format_date, format_datetime, format_time, get_timezone_name

from ..closing import Closing
from ..handoff import HandoffNotice, HandoffState
from ..protocol import events as kinds
from ..sessions import Event, Session
from ..survey import SurveyResponse
from .sentences import Gettext, Piece, Sentence, Sentences, chat_text, name

_TZ_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}$")
MAX_EVENTS = 10_000
# A handed_over event follows its handoff's acceptance within this many seconds.
_ACCEPT_SLACK = 60.0


def known_zone(candidate: str | None) -> str | None:
    """`candidate` if it names a time zone of the system's database, else None."""
    if candidate and len(candidate) <= 64 and _TZ_NAME.match(candidate):
        try:
            zoneinfo.ZoneInfo(candidate)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            return None
        return candidate
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    """One line: a chat message (`author` set) or a system sentence."""

    at: float
    sentence: Sentence
    author: Piece | None = None
    role: str | None = None  # the message author's role: technician or end_user
    detail: str | None = None  # shown small after the sentence (a file's SHA-256)
    time: str = ""  # `at` as the reader reads it
    iso: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Day:
    label: str
    lines: tuple[Line, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Transcript:
    session: Session
    technicians: tuple[str, ...]
    notes: str | None  # None: a copy for the end user, without the technicians' notes
    days: tuple[Day, ...]
    created: str
    started: str | None
    ended: str | None
    end: Sentence | None  # how it ended
    zone: str  # the time zone's name as the reader reads it
    zone_id: str  # its IANA name (for the page's links)
    survey: SurveyResponse | None = None  # the end user's answers, shown at the end
    survey_at: str | None = None  # when they answered, as the reader reads it
    closing: Closing | None = None  # the technicians' closing form (not in the end user's)
    closing_at: str | None = None  # when it was saved last, as the reader reads it
    closing_category: str | None = None  # its category's name in the reader's language


class Reader:
    """Times in one language and time zone."""

    def __init__(self, lang: str, zone_id: str) -> None:
        self.lang = lang
        self.zone_id = zone_id
        self.zone: tzinfo = UTC if zone_id == "UTC" else zoneinfo.ZoneInfo(zone_id)

    def _dt(self, at: float) -> datetime:
        return datetime.fromtimestamp(at, UTC)

    def time(self, at: float) -> str:
        return format_time(self._dt(at), "medium", tzinfo=self.zone, locale=self.lang)

    def moment(self, at: float) -> str:
        return format_datetime(self._dt(at), "medium", tzinfo=self.zone, locale=self.lang)

    def day(self, at: float) -> str:
        return format_date(self._dt(at).astimezone(self.zone), "full", locale=self.lang)

    def zone_name(self) -> str:
        if self.zone_id == "UTC":
            return "UTC"
        name = get_timezone_name(self.zone, "long", locale=self.lang)
        return f"{name} ({self.zone_id})"


def build(session: Session, events: list[Event], handoffs: list[HandoffNotice],
          notes: str | None, _: Gettext, reader: Reader) -> Transcript:
    sentences = Sentences(_, reader.lang)
    lines: list[Line] = []
    accepted = sorted((n for n in handoffs if n.handoff.state.value == "accepted"),
                      key=lambda n: n.handoff.decided_at or 0)
    technicians: dict[str, None] = {}  # in the order they appear
    end: Sentence | None = None
    for event in events:
        author = event.author
        if author and author.get("role") == "technician":
            technicians.setdefault(author["name"], None)
        if event.type == kinds.ChatMessage.TYPE:
            lines.append(Line(event.at, chat_text(str(event.data.get("text", "")),
                                                  event.data.get("open_url")
                                                  or event.data.get("goto_url")),
                              author=name(author["name"] if author else ""),
                              role=author.get("role") if author else None))
            continue
        if event.type == kinds.SurveyCompleted.TYPE:
            continue  # the answers are shown at the end (Transcript.survey)
        if event.type == kinds.Ended.TYPE:
            end = sentences.ended(event.data.get("reason"), author, session.end_user_name)
            lines.append(Line(event.at, end))
            continue
        if event.type == kinds.HandedOver.TYPE:
            technicians.setdefault(str(event.data.get("to", "")), None)
            if event.data.get("from_id") is not None:  # else a queue's name
                technicians.setdefault(str(event.data.get("from", "")), None)
            # The broker's own handover has no note; a supervisor's has one (broker/supervision).
            note = None if event.data.get("reason") == "owner_gone" \
                else _take_note(accepted, event)
            lines.append(Line(event.at, sentences.handed_over(event.data, note)))
            continue
        if event.type == kinds.TechnicianJoined.TYPE:
            technicians.setdefault(str(event.data.get("name", "")), None)
        detail = (f"SHA-256 {event.data['sha256']}"
                  if event.type == kinds.FileOffered.TYPE else None)
        lines.append(Line(event.at, sentences.event(event.type, author, event.data),
                          detail=detail))
    if session.technician_name:
        technicians.setdefault(session.technician_name, None)
    lines += _unaccepted(handoffs, sentences)
    lines.sort(key=lambda line: line.at)  # stable: events keep their order
    return Transcript(
        session, tuple(t for t in technicians if t), notes, _days(lines, reader),
        reader.moment(session.created_at),
        None if session.started_at is None else reader.moment(session.started_at),
        None if session.ended_at is None else reader.moment(session.ended_at), end,
        reader.zone_name(), reader.zone_id)


def _take_note(accepted: list[HandoffNotice], event: Event) -> str | None:
    """The note of the accepted handoff that this handed_over event completed (removed
    from `accepted`, so that each note is told once)."""
    for notice in accepted:
        handoff = notice.handoff
        if (handoff.decided_by == event.data.get("to_id")
                and handoff.from_technician_id == event.data.get("from_id")
                and (handoff.decided_at or 0) - _ACCEPT_SLACK <= event.at):
            accepted.remove(notice)
            return handoff.note
    return None


def _unaccepted(handoffs: list[HandoffNotice], sentences: Sentences) -> list[Line]:
    """Transfers that did not move the session: offered (with their note), and then
    declined, expired or taken back."""
    lines = []
    for notice in handoffs:
        handoff = notice.handoff
        if handoff.state is HandoffState.ACCEPTED:
            continue
        lines.append(Line(handoff.created_at, sentences.offered(
            notice.from_name, notice.to_name, notice.team_name, handoff.note)))
        # Cancelled by somebody (the sender), not by the session's end.
        taken_back = handoff.state is HandoffState.CANCELLED and handoff.decided_by is not None
        outcome = sentences.transfer_outcome(handoff.state, notice.from_name, notice.to_name,
                                             handoff.reason, taken_back=taken_back)
        if outcome is not None and handoff.decided_at is not None:
            lines.append(Line(handoff.decided_at, outcome))
    return lines


def _days(lines: list[Line], reader: Reader) -> tuple[Day, ...]:
    days: list[tuple[str, list[Line]]] = []
    for line in lines:
        label = reader.day(line.at)
        if not days or days[-1][0] != label:
            days.append((label, []))
        days[-1][1].append(dataclasses.replace(
            line, time=reader.time(line.at),
            iso=datetime.fromtimestamp(line.at, UTC).isoformat(timespec="seconds")))
    return tuple(Day(label, tuple(day)) for label, day in days)


def plain(sentence: Sentence) -> str:
    """A sentence as plain text (the text export): a link shows where it goes."""
    return "".join(piece.text if piece.kind != "link" or piece.text == piece.href
                   else f"{piece.text} <{piece.href}>" for piece in sentence)


