"""A session's events as sentences people read ("Maria paused screen sharing"), for the
transcript page, its exports and the emailed copies (broker/transcripts/build.py).

A sentence is a tuple of `Piece`s, so that each rendering can treat the parts as it must:
the HTML isolates names in `<bdi>` and makes links clickable, the text export writes them
plainly. Every piece of text from people (names, chat lines, notes, file names) passes
through `inert`, which shows bidi controls instead of obeying them. The event kinds are
those of broker/protocol/events.py; a kind this module does not know is shown by its
type, as docs/protocol.md asks of every client.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from babel.dates import format_timedelta

from ..handoff import HandoffState
from ..protocol import events as kinds
from .text import inert

Gettext = Callable[[str], str]
_URL = re.compile(r"\bhttps?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_OPEN = re.compile(r"^(\s*(?:open|goto):\s*)(\S+)(.*)$", re.IGNORECASE | re.DOTALL)


@dataclasses.dataclass(frozen=True, slots=True)
class Piece:
    """Part of a line: plain `text`, a person's or a file's `name`, a `link` to `href`,
    a `quote` (a note, kept as written), or a `code` (a checksum, an unknown type)."""

    text: str
    kind: str = "text"
    href: str | None = None


Sentence = tuple[Piece, ...]


def name(text: str | None) -> Piece:
    return Piece(inert(text or ""), "name")


def quote(text: str) -> Piece:
    return Piece(inert(text), "quote")


def say(template: str, **values: Piece) -> Sentence:
    """A translated template with its placeholders filled by pieces."""
    pieces: list[Piece] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.start() > position:
            pieces.append(Piece(template[position:match.start()]))
        pieces.append(values[match.group(1)])
        position = match.end()
    if position < len(template):
        pieces.append(Piece(template[position:]))
    return tuple(pieces)


def chat_text(text: str, open_url: str | None = None) -> Sentence:
    """A chat line: its http(s) addresses as links; a technician's ``open:`` (``goto:``)
    line with its address linked to the page it opened for the end user."""
    text = inert(text)
    if open_url is not None and (match := _OPEN.match(text)):
        return (Piece(match.group(1)), Piece(match.group(2), "link", open_url),
                *chat_text(match.group(3)))
    pieces: list[Piece] = []
    position = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        if match.start() > position:
            pieces.append(Piece(text[position:match.start()]))
        pieces.append(Piece(url, "link", url))
        position = match.start() + len(url)
    if position < len(text):
        pieces.append(Piece(text[position:]))
    return tuple(pieces)


def file_size(size: int, lang: str) -> str:
    """Decimal units, as the pages write them ("2.5 MB"; German "2,5 MB")."""
    from babel.numbers import format_decimal

    value, unit = float(size), "B"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            break
        value /= 1000
    shown = format_decimal(round(value, 1) if unit != "B" else int(value), "#,##0.#",
                           locale=lang)
    return f"{shown}\u00a0{unit}"


class Sentences:
    """Sentences in one language: `event(type, author, data)` for stored events, and the
    handoff and ending sentences the transcript adds."""

    def __init__(self, _: Gettext, lang: str) -> None:
        self._ = _
        self.lang = lang

    def event(self, type_name: str, author: dict[str, Any] | None,
              data: dict[str, Any]) -> Sentence:
        _ = self._
        who = name(author["name"] if author else "")
        family = type_name.split(".")[0]
        if type_name == kinds.Created.TYPE:
            return say(_("%(name)s created the session"), name=who)
        if type_name == kinds.Joined.TYPE:
            return say(_("%(name)s joined"), name=who)
        if type_name == kinds.Disconnected.TYPE:
            if data.get("reason") == "broker_restart" or author is None:
                return say(_("The support service restarted"))
            return say(_("%(name)s lost the connection"), name=who)
        if type_name == kinds.Reconnected.TYPE:
            return say(_("%(name)s is back"), name=who)
        if type_name == kinds.HandedOver.TYPE:
            return self.handed_over(data, None)
        if type_name == kinds.TechnicianJoined.TYPE:
            return say(_("%(name)s invited %(guest)s into the session"), name=who,
                       guest=name(data.get("name")))
        if type_name == kinds.TechnicianLeft.TYPE:
            return say(_("%(name)s left the session"), name=name(data.get("name")))
        if family == "request":
            return self._request(type_name, who, data)
        if family in ("share", "control", "agent"):
            return self._screen(type_name, who, data)
        if family == "file":
            return self._file(type_name, who, data)
        return (Piece(type_name, "code"),)

    def ended(self, reason: str | None, author: dict[str, Any] | None,
              end_user: str | None) -> Sentence:
        _ = self._
        who = name(author["name"] if author else "")
        if reason == "ended_by_technician" and author:
            return say(_("%(name)s ended the session"), name=who)
        if reason == "key_revoked":
            return say(_("%(name)s withdrew the key before anyone joined; the session ended"),
                       name=who)
        if reason == "key_expired":
            return say(_("The key expired before anyone joined; the session ended"))
        if reason == "reconnect_timeout":
            return say(_("The session ended: %(name)s did not come back within the reconnect "
                         "window"), name=name(end_user or _("Guest")))
        if reason == "owner_gone":
            return say(_("The session ended: its technician was gone and nobody could take "
                         "it over"))
        if reason == "not_connected":
            return say(_("The request ended: %(name)s was not connected"),
                       name=name(end_user or _("Guest")))
        return say(_("Session ended"))

    def handed_over(self, data: dict[str, Any], note: str | None) -> Sentence:
        _ = self._
        parts = {"from": name(data.get("from")), "to": name(data.get("to"))}
        if data.get("reason") == "owner_gone":
            return say(_("%(from)s was gone; the session went to %(to)s"), **parts)
        if data.get("reason") == "taken_over":  # a supervisor's (docs/supervision.md)
            return say(_("%(to)s took the session over from %(from)s: %(note)s"), **parts,
                       note=quote(note or ""))
        if data.get("from_id") is None:  # a customer's request, taken from its queue
            if note:
                return say(_("%(to)s took the request from the queue %(from)s: %(note)s"),
                           **parts, note=quote(note))
            return say(_("%(to)s took the request from the queue %(from)s"), **parts)
        if note:
            return say(_("%(from)s handed the session to %(to)s: %(note)s"), **parts,
                       note=quote(note))
        return say(_("%(from)s handed the session to %(to)s"), **parts)

    def offered(self, sender: str, receiver: str | None, team: str | None,
                note: str) -> Sentence:
        """A transfer that was offered (its outcome comes in a sentence of its own)."""
        _ = self._
        if team is not None:
            return say(_("%(from)s put the session in the queue %(team)s: %(note)s"),
                       team=name(team), note=quote(note), **{"from": name(sender)})
        return say(_("%(from)s offered the session to %(to)s: %(note)s"),
                   to=name(receiver), note=quote(note), **{"from": name(sender)})

    def transfer_outcome(self, state: HandoffState, sender: str, receiver: str | None,
                         reason: str | None, *, taken_back: bool) -> Sentence | None:
        _ = self._
        if state is HandoffState.DECLINED:
            return say(_("%(to)s declined the transfer: %(reason)s"), to=name(receiver),
                       reason=quote(reason or ""))
        if state is HandoffState.EXPIRED:
            return say(_("Nobody accepted the transfer in time; the session stayed with "
                         "%(from)s"), **{"from": name(sender)})
        if taken_back:
            return say(_("%(from)s took the transfer back"), **{"from": name(sender)})
        return None

    def _request(self, type_name: str, who: Piece, data: dict[str, Any]) -> Sentence:
        """A customer's request from the portal (broker/intake)."""
        _ = self._
        levels = {"critical": _("critical"), "high": _("high"), "standard": _("standard"),
                  "bugfix": _("bug fix"), "request": _("question or wish")}
        severity = Piece(levels.get(str(data.get("severity")), str(data.get("severity"))))
        if type_name == kinds.RequestOpened.TYPE:
            return say(_("%(name)s asked for help (severity: %(severity)s); the request waits "
                         "in the queue %(team)s"), name=who, severity=severity,
                       team=name(data.get("team")))
        if type_name == kinds.RequestBreached.TYPE:
            target = Piece(format_timedelta(int(data.get("target_seconds") or 0),
                                            locale=self.lang))
            if data.get("business_hours"):
                return say(_("Nobody answered within the response target (%(target)s in "
                             "business hours, severity: %(severity)s)"), target=target,
                           severity=severity)
            return say(_("Nobody answered within the response target (%(target)s, "
                         "severity: %(severity)s)"), target=target, severity=severity)
        return (Piece(type_name, "code"),)

    def _screen(self, type_name: str, who: Piece, data: dict[str, Any]) -> Sentence:
        _ = self._
        reason = data.get("reason")
        if type_name == kinds.ShareStopped.TYPE:
            special = {"cancelled": _("%(name)s cancelled screen sharing"),
                       "capture_failed": _("The screen could not be captured; sharing "
                                           "stopped"),
                       "reloaded": _("Screen sharing stopped: the page was reloaded"),
                       "screen_unavailable": _("The screen could not be shared: this "
                                               "Wayland desktop lets no program see it"),
                       "desktop_refused": _("%(name)s did not allow screen sharing in "
                                            "their desktop's dialog"),
                       "switched": _("%(name)s switched screen sharing")}
            return say(special.get(reason or "", _("%(name)s stopped screen sharing")),
                       name=who)
        if type_name == kinds.ControlStopped.TYPE:
            special = {"hotkey": _("%(name)s ended remote control with the hotkey"),
                       "share_stopped": _("Remote control ended with screen sharing"),
                       "agent_restarted": _("Remote control ended: the support agent was "
                                            "restarted"),
                       "view_only": _("Remote control is not possible: this desktop only "
                                      "lets the screen be viewed"),
                       "input_refused": _("Control was not granted: input was not allowed "
                                          "in the desktop's dialog"),
                       "input_failed": _("Remote control could not start on this desktop")}
            return say(special.get(reason or "", _("%(name)s ended remote control")),
                       name=who)
        templates = {
            kinds.ShareRequested.TYPE: _("%(name)s asked to see the screen"),
            kinds.ShareConsented.TYPE: _("%(name)s agreed to share their screen"),
            kinds.ShareRefused.TYPE: _("%(name)s declined to share their screen"),
            kinds.ShareStarted.TYPE: _("%(name)s started sharing their screen"),
            kinds.SharePaused.TYPE: _("%(name)s paused screen sharing"),
            kinds.ShareResumed.TYPE: _("%(name)s resumed screen sharing"),
            kinds.ControlRequested.TYPE: _("%(name)s asked to control the computer"),
            kinds.ControlGranted.TYPE: _("%(name)s allowed remote control"),
            kinds.ControlRefused.TYPE: _("%(name)s declined remote control"),
            kinds.AgentConnected.TYPE: _("%(name)s's support agent connected"),
            kinds.AgentDisconnected.TYPE: _("%(name)s's support agent disconnected"),
        }
        template = templates.get(type_name)
        return say(template, name=who) if template else (Piece(type_name, "code"),)

    def _file(self, type_name: str, who: Piece, data: dict[str, Any]) -> Sentence:
        _ = self._
        file = name(data.get("name"))
        if type_name == kinds.FileOffered.TYPE:
            return say(_("%(name)s sent the file %(file)s (%(size)s)"), name=who, file=file,
                       size=Piece(file_size(int(data.get("size") or 0), self.lang)))
        if type_name == kinds.FileDamaged.TYPE:
            return say(_("%(file)s from %(name)s was damaged in transfer and was not "
                         "delivered"), name=who, file=file)
        if type_name == kinds.FileRemoved.TYPE:
            return say(_("%(file)s was removed from the server"), file=file)
        if type_name == kinds.FileCancelled.TYPE:
            cancelled = {
                "expired": _("%(file)s was not sent completely in time and was dropped"),
                "session_ended": _("%(file)s was not sent completely before the session "
                                   "ended"),
                "type_mismatch": _("%(file)s was refused: its content does not match its "
                                   "file type"),
                "insufficient_storage": _("%(file)s was refused: the server is out of disk "
                                          "space"),
            }
            return say(cancelled.get(data.get("reason") or "",
                                     _("Sending %(file)s was cancelled")), file=file)
        return (Piece(type_name, "code"),)
