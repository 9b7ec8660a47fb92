"""The bearer credentials the broker hands out, told apart by their prefix.

A participant token (``sbp_…``) speaks for one participant of one session (an end user's
browser or agent); an API token (``sbt_…``) for a technician. This module is the one place
that knows the prefixes: the edge, the services and the agent ask it instead of comparing
strings. It imports nothing of the server, so the agent can use it.
"""

from __future__ import annotations

import enum
import secrets
from typing import Final, TypeGuard

_TOKEN_BYTES: Final = 32


class Credential(enum.Enum):
    """What kind of bearer credential a string is, by its prefix."""

    PARTICIPANT = "sbp_"
    API = "sbt_"

    def new(self) -> str:
        """A fresh random credential of this kind (shown once; stored as a hash)."""
        return self.value + secrets.token_urlsafe(_TOKEN_BYTES)


def kind_of(token: str | None) -> Credential | None:
    """The kind of `token`, or None for no token or one with neither prefix."""
    if token:
        for kind in Credential:
            if token.startswith(kind.value):
                return kind
    return None


def is_participant_token(token: str | None) -> TypeGuard[str]:
    return kind_of(token) is Credential.PARTICIPANT
