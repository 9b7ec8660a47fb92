"""The audit log's value objects: who acted, what they did, and the record that says so.

Records form one hash chain: each holds the SHA-256 of the record before it (its
`prev_hash`), computed over the record's stored columns exactly as stored (`digest`), so
changing, deleting or reordering records breaks a link that `verify` finds. The first
record follows `GENESIS`; after a prune, the oldest remaining record follows the hash an
anchor record (`audit.pruned`) wrote down.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
# Words that name a credential: a details object with such a key is refused, so that a
# careless caller cannot put a key, token, password or code into the log (docs/audit.md).
SECRET_WORDS = ("key", "token", "password", "secret", "code", "cookie", "csrf")
# Details keys that contain a secret word but name no secret.
_NOT_SECRET = frozenset({"key_expires_at", "end_code", "error_code"})


class ActorKind(enum.StrEnum):
    TECHNICIAN = "technician"
    END_USER = "end_user"
    SYSTEM = "system"        # the broker itself: a sweep, a timeout
    ANONYMOUS = "anonymous"  # somebody not logged in: a failed login, a wrong key


class Action(enum.StrEnum):
    """Every act the log records (docs/audit.md describes each one's details)."""

    LOGIN = "login"
    LOGIN_FAILED = "login.failed"
    LOGOUT = "logout"
    SEAT_TAKEN_OVER = "login.seat_taken_over"
    LOGIN_ENDED = "admin.login_ended"
    PASSWORD_CHANGED = "password.changed"  # noqa: S105 (names an act, is none)
    TOKEN_CREATED = "token.created"  # noqa: S105
    TOKEN_REVOKED = "token.revoked"  # noqa: S105
    KEY_ISSUED = "key.issued"
    KEY_DELIVERED = "key.delivered"
    KEY_REDEEMED = "key.redeemed"
    KEY_REVOKED = "key.revoked"
    KEY_GUESSES_FAILED = "key.guesses_failed"
    SESSION_STARTED = "session.started"
    SESSION_HANDED_OVER = "session.handed_over"
    COLLABORATOR_ADDED = "session.collaborator_added"
    SESSION_ENDED = "session.ended"
    NOTES_CHANGED = "session.notes_changed"
    CLOSING_RECORDED = "session.closing_recorded"
    SHARE_REQUESTED = "share.requested"
    SHARE_CONSENTED = "share.consented"
    SHARE_REFUSED = "share.refused"
    SHARE_STOPPED = "share.stopped"
    CONTROL_GRANTED = "control.granted"
    CONTROL_REVOKED = "control.revoked"
    FILE_UPLOADED = "file.uploaded"
    FILE_DOWNLOADED = "file.downloaded"
    FILE_DELETED = "file.deleted"
    TECHNICIAN_CREATED = "admin.technician_created"
    TECHNICIAN_CHANGED = "admin.technician_changed"
    PASSWORD_RESET = "admin.password_reset"  # noqa: S105
    FACTORS_RESET = "admin.factors_reset"
    FACTOR_POLICY_CHANGED = "admin.factor_policy_changed"
    FACTOR_ADDED = "factor.added"
    FACTOR_REMOVED = "factor.removed"
    RECOVERY_CODE_USED = "factor.recovery_code_used"
    RECOVERY_CODES_RENEWED = "factor.recovery_codes_renewed"
    TEAM_CREATED = "admin.team_created"
    TEAM_CHANGED = "admin.team_changed"
    TEAM_MEMBER_ADDED = "admin.team_member_added"
    TEAM_MEMBER_REMOVED = "admin.team_member_removed"
    TEAM_LEAD_CHANGED = "admin.team_lead_changed"
    WATCH_STARTED = "supervisor.watch_started"
    WATCH_STOPPED = "supervisor.watch_stopped"
    SUPERVISOR_JOINED = "supervisor.joined"
    SUPERVISOR_TOOK_OVER = "supervisor.took_over"
    CANNED_ADDED = "admin.canned_added"
    CANNED_CHANGED = "admin.canned_changed"
    CANNED_REMOVED = "admin.canned_removed"
    INTAKE_FORM_CHANGED = "admin.intake_form_changed"
    WEBHOOK_ADDED = "admin.webhook_added"
    WEBHOOK_CHANGED = "admin.webhook_changed"
    WEBHOOK_REMOVED = "admin.webhook_removed"
    WEBHOOK_ROTATED = "admin.webhook_secret_rotated"  # noqa: S105
    CLOSING_CATEGORIES_CHANGED = "admin.closing_categories_changed"
    PRUNED = "audit.pruned"


@dataclasses.dataclass(frozen=True, slots=True)
class AuditActor:
    """Who did it. `id`: the technician's or participant's id (as text), None for the
    broker and for anonymous callers."""

    kind: ActorKind
    id: str | None
    name: str

    def __post_init__(self) -> None:
        if len(self.name) > 200:
            object.__setattr__(self, "name", self.name[:200])

    @classmethod
    def technician(cls, technician_id: int, name: str) -> AuditActor:
        return cls(ActorKind.TECHNICIAN, str(technician_id), name)

    @classmethod
    def end_user(cls, participant_id: int, name: str) -> AuditActor:
        return cls(ActorKind.END_USER, str(participant_id), name)

    @classmethod
    def of(cls, role: str, actor_id: int, name: str) -> AuditActor:
        """A session's participant as the sessions domain names it (`role`
        "technician" or "end_user")."""
        if role == "technician":
            return cls.technician(actor_id, name)
        return cls.end_user(actor_id, name)


SYSTEM = AuditActor(ActorKind.SYSTEM, None, "broker")
ANONYMOUS = AuditActor(ActorKind.ANONYMOUS, None, "")


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """An act to record, before the chain gives it its number and link."""

    action: Action
    actor: AuditActor
    address: str | None
    session_id: str | None
    details: dict[str, Any]

    def __post_init__(self) -> None:
        check_no_secrets(self.details)


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """One stored record. `details` is the JSON text exactly as stored (hashed as such)."""

    id: int
    at: float
    actor_kind: str
    actor_id: str | None
    actor_name: str
    address: str | None
    session_id: str | None
    action: str
    details: str
    prev_hash: str

    def digest(self) -> str:
        """The SHA-256 the next record holds as its `prev_hash`."""
        text = json.dumps([self.id, self.at, self.actor_kind, self.actor_id, self.actor_name,
                           self.address, self.session_id, self.action, self.details,
                           self.prev_hash], separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def public(self) -> dict[str, Any]:
        """As the API and the export show it: `at` in ISO 8601, `timestamp` as stored (the
        hash covers that number)."""
        return {"id": self.id, "at": _iso(self.at), "timestamp": self.at,
                "actor": {"kind": self.actor_kind, "id": self.actor_id,
                          "name": self.actor_name},
                "address": self.address, "session_id": self.session_id,
                "action": self.action, "details": json.loads(self.details),
                "prev_hash": self.prev_hash, "hash": self.digest()}


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def details_text(details: dict[str, Any]) -> str:
    return json.dumps(details, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def check_no_secrets(details: Any, path: str = "details") -> None:
    """Refuse details whose keys name a credential (anywhere in the object)."""
    if isinstance(details, dict):
        for name, value in details.items():
            lowered = str(name).lower()
            if lowered not in _NOT_SECRET and any(word in lowered for word in SECRET_WORDS):
                raise ValueError(f"{path}.{name}: the audit log never holds credentials")
            check_no_secrets(value, f"{path}.{name}")
    elif isinstance(details, list):
        for value in details:
            check_no_secrets(value, path)


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """What `verify` found: how many records it checked, and the first broken link (the
    record where the chain stops holding, and why), or None when the chain is whole."""

    checked: int
    broken_at: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None
