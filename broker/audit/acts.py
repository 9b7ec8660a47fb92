"""Which of a session journal's events are audited acts, and what their records say.

The journal (broker/sessions/journal.py) tells the audit service of every event it
stored for the first time (a resend is not an act); the events that are acts are here,
each with the actions it records and the details it keeps. Fields that could carry a
credential (a file's download address) are left out.
"""

from __future__ import annotations

from typing import Any

from .model import Action

# A handed_over event's reason when a supervisor took the session over (broker/supervision).
TAKEN_OVER = "taken_over"

_SHARE = ("share_id", "direction", "source", "sharer_name", "viewer_name", "control")
_FILE = ("upload_id", "name", "size", "content_type", "sha256")

# Journal event type -> (actions, the event's fields its records keep).
JOURNAL_ACTS: dict[str, tuple[tuple[Action, ...], tuple[str, ...]]] = {
    "created": ((Action.SESSION_STARTED, Action.KEY_ISSUED), ()),
    "joined": ((Action.KEY_REDEEMED,), ()),
    "handed_over": ((Action.SESSION_HANDED_OVER,),
                    ("from", "from_id", "to", "to_id", "stays", "reason")),
    "technician_joined": ((Action.COLLABORATOR_ADDED,), ("name",)),
    "ended": ((Action.SESSION_ENDED,), ("reason",)),
    "share.requested": ((Action.SHARE_REQUESTED,), _SHARE),
    "share.consented": ((Action.SHARE_CONSENTED,), _SHARE),
    "share.refused": ((Action.SHARE_REFUSED,), _SHARE),
    "share.stopped": ((Action.SHARE_STOPPED,), (*_SHARE, "reason")),
    "control.granted": ((Action.CONTROL_GRANTED,), _SHARE),
    "control.stopped": ((Action.CONTROL_REVOKED,), (*_SHARE, "reason")),
    "file.offered": ((Action.FILE_UPLOADED,), _FILE),
    "file.removed": ((Action.FILE_DELETED,), (*_FILE[:3], "reason")),
}


def journal_acts(kind: str, data: dict[str, Any]) -> list[tuple[Action, dict[str, Any]]]:
    """The actions (with their details) a stored journal event of `kind` records."""
    found = JOURNAL_ACTS.get(kind)
    if found is None:
        return []
    actions, fields = found
    details = {name: data[name] for name in fields if name in data}
    if kind == "created":
        details = {"key_expires_at": data["expires_at"]}
    if kind == "technician_joined" and data.get("supervisor"):
        actions = (Action.SUPERVISOR_JOINED,)  # joined from the board, not invited
    if kind == "handed_over" and data.get("reason") == TAKEN_OVER:
        return []  # broker/supervision records it itself, with the supervisor's note
    if kind == "ended" and data.get("reason") == "key_revoked":
        actions = (Action.KEY_REVOKED, *actions)
    return [(action, details) for action in actions]
