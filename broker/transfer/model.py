"""Uploads: their states, the transition table, and the record of one file."""

from __future__ import annotations

import dataclasses
import enum
import re

from ..errors import IllegalTransition
from ..sessions import Actor

FILES_PATH = "/api/v1/sessions/{session_id}/files/"


class UploadState(enum.StrEnum):
    RECEIVING = "receiving"   # created; data arrives (and may resume) until it is complete
    COMPLETE = "complete"     # all bytes stored, hash checked: offered to the other side
    DAMAGED = "damaged"       # the whole-file SHA-256 did not match the declared one
    REJECTED = "rejected"     # over a limit while streaming (type, disk space)
    CANCELLED = "cancelled"   # ended by its sender, or by the end of its session
    EXPIRED = "expired"       # left unfinished longer than the expiry allows
    REMOVED = "removed"       # complete once; its data is gone (retention, or its sender)

    @property
    def has_data(self) -> bool:
        return self in (UploadState.RECEIVING, UploadState.COMPLETE)


TRANSITIONS: dict[UploadState, frozenset[UploadState]] = {
    UploadState.RECEIVING: frozenset({
        UploadState.COMPLETE, UploadState.DAMAGED, UploadState.REJECTED,
        UploadState.CANCELLED, UploadState.EXPIRED}),
    UploadState.COMPLETE: frozenset({UploadState.REMOVED}),
    UploadState.DAMAGED: frozenset(),
    UploadState.REJECTED: frozenset(),
    UploadState.CANCELLED: frozenset(),
    UploadState.EXPIRED: frozenset(),
    UploadState.REMOVED: frozenset(),
}


def check_transition(current: UploadState, new: UploadState) -> None:
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(f"an upload cannot go from {current} to {new}")


_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclasses.dataclass(frozen=True, slots=True)
class Upload:
    """One file sent in a session, as stored. `size` is the declared length; `offset`
    how much of it is stored (as of the last commit); `sha256` is set once complete."""

    id: str
    session_id: str
    sender: Actor
    name: str
    size: int
    offset: int
    state: UploadState
    content_type: str
    created_at: float
    updated_at: float
    expires_at: float | None
    completed_at: float | None
    sha256: str | None
    declared_sha256: str | None
    metadata: str
    reason: str | None
    blob_id: str
    wrapped_key: str

    def __post_init__(self) -> None:
        if not 0 <= self.offset <= self.size:
            raise ValueError("an upload's offset lies within its size")
        for digest in (self.sha256, self.declared_sha256):
            if digest is not None and not _HEX_SHA256.match(digest):
                raise ValueError("SHA-256 digests are 64 lower-case hex digits")

    @property
    def url(self) -> str:
        """Where it is resumed (tus) and, once complete, downloaded."""
        return FILES_PATH.format(session_id=self.session_id) + self.id

    def offer(self) -> dict[str, object]:
        """The body of a "file.offered" event: what the other side sees in the chat.
        (``content_type``, not ``type``: event fields sit beside the event's own type.)"""
        return {"upload_id": self.id, "name": self.name, "size": self.size,
                "content_type": self.content_type, "sha256": self.sha256, "url": self.url}
