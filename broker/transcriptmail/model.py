"""Who gets a session's transcript by email, and an end user's request for a copy.

Seed 000 sends transcripts at three levels: the company's, a team's (seed: department),
and each technician's own; each level is on or off, so that "several copies of the same
transcript" happen only if admins want them, and even then an address gets one
(`recipients` de-duplicates, the first level naming it wins). The end user gets a copy
only at an address they proved is theirs, with a single-use code sent to it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from ..errors import InvalidInput
from ..i18n import LANGUAGES
from ..inputs import email_address

MAX_ADDRESSES: Final = 20
CODE_DIGITS: Final = 6
MAX_CODES: Final = 3  # codes sent per session: the feature mails no stranger more than this


@dataclasses.dataclass(frozen=True, slots=True)
class Level:
    """The company's or a team's setting: on or off, to which addresses, written in which
    language and time zone."""

    enabled: bool = False
    addresses: tuple[str, ...] = ()
    language: str = "en"
    time_zone: str = "UTC"

    def to_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "addresses": list(self.addresses),
                "language": self.language, "time_zone": self.time_zone}

    @classmethod
    def parse(cls, raw: Any, known_zone: Any) -> Level:
        """A level as an admin sent it (the shape of `to_json`; every field optional)."""
        if not isinstance(raw, dict) or set(raw) - {"enabled", "addresses", "language",
                                                    "time_zone"}:
            raise InvalidInput("A level is an object of enabled, addresses, language and "
                               "time_zone.", code="invalid_transcript_mail")
        enabled = raw.get("enabled", False)
        addresses = raw.get("addresses", [])
        language = raw.get("language", "en")
        zone = raw.get("time_zone", "UTC")
        if not isinstance(enabled, bool):
            raise InvalidInput("enabled is true or false.", code="invalid_transcript_mail")
        if (not isinstance(addresses, list) or len(addresses) > MAX_ADDRESSES
                or not all(isinstance(a, str) for a in addresses)):
            raise InvalidInput(f"addresses is a list of at most {MAX_ADDRESSES} addresses.",
                               code="invalid_transcript_mail")
        if language not in LANGUAGES:
            raise InvalidInput("language is en or de.", code="invalid_language")
        if not isinstance(zone, str) or (zone != "UTC" and known_zone(zone) is None):
            raise InvalidInput("time_zone names a time zone, such as Europe/Berlin.",
                               code="invalid_time_zone")
        unique = dict.fromkeys(email_address(a) for a in addresses if a.strip())
        if enabled and not unique:
            raise InvalidInput("A level that is on needs an address.",
                               code="invalid_transcript_mail")
        return cls(enabled, tuple(unique), language, zone)


@dataclasses.dataclass(frozen=True, slots=True)
class Recipient:
    address: str
    level: str  # company, team, technician or end_user
    language: str
    time_zone: str


def recipients(*found: Recipient) -> list[Recipient]:
    """Each address once (compared without case), as the first level naming it asks."""
    seen: dict[str, Recipient] = {}
    for recipient in found:
        seen.setdefault(recipient.address.casefold(), recipient)
    return list(seen.values())


@dataclasses.dataclass(frozen=True, slots=True)
class Copy:
    """An end user's request for a copy of their session's transcript."""

    session_id: str
    email: str
    code_hash: str | None  # None once the code was used
    code_expires_at: float
    codes_sent: int
    language: str
    time_zone: str
    confirmed_at: float | None

    @classmethod
    def from_row(cls, row: Any) -> Copy:
        return cls(row.session_id, row.email, row.code_hash, row.code_expires_at,
                   row.codes_sent, row.language, row.time_zone, row.confirmed_at)
