"""Canned responses: ready-made chat lines on three shelves (seed 000).

    company    every technician uses them; only admins add, change and remove them
    team       the team's members use them; only admins add, change and remove them
    personal   one technician's own: nobody else sees them, admins included

A response's text may hold placeholders (`PLACEHOLDERS`) that the console fills in when
it inserts the response into the composer, before the technician edits and sends it.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import unicodedata
from typing import Final

from ..errors import InvalidInput
from ..technicians import Technician

MAX_TITLE: Final = 100
MAX_SHORTCUT: Final = 32
# Responses per shelf: plenty for a picker, and a bound on what one caller can store.
MAX_PER_SHELF: Final = 500

# Placeholder -> what the console puts in its place (docs/api.md says the same).
PLACEHOLDERS: Final = {
    "{customer}": "the end user's name as the session shows it",
    "{technician}": "the name of the technician who sends the response",
}

# A shortcut is typed after "/" in the composer: letters, digits, "-" and "_".
_SHORTCUT = re.compile(rf"[^\W_][\w-]{{0,{MAX_SHORTCUT - 1}}}")


class Scope(enum.StrEnum):
    COMPANY = "company"
    TEAM = "team"
    PERSONAL = "personal"


@dataclasses.dataclass(frozen=True, slots=True)
class Shelf:
    """Whose a canned response is: the company's, a team's or one technician's."""

    scope: Scope
    team_id: int | None = None
    technician_id: int | None = None

    def __post_init__(self) -> None:
        if (self.team_id is not None) != (self.scope is Scope.TEAM):
            raise ValueError("a team's shelf, and only that, names its team")
        if (self.technician_id is not None) != (self.scope is Scope.PERSONAL):
            raise ValueError("a personal shelf, and only that, names its technician")

    def managed_by(self, technician: Technician) -> bool:
        """Whether `technician` may add, change and remove responses on this shelf."""
        if self.scope is Scope.PERSONAL:
            return self.technician_id == technician.id
        return technician.is_admin

    def seen_by(self, technician: Technician, team_ids: frozenset[int]) -> bool:
        """Whether `technician`, a member of the teams `team_ids`, may see (and use) the
        responses on this shelf. Admins see every team's, to manage them."""
        if self.scope is Scope.PERSONAL:
            return self.technician_id == technician.id
        if self.scope is Scope.TEAM:
            return technician.is_admin or self.team_id in team_ids
        return True


@dataclasses.dataclass(frozen=True, slots=True)
class Draft:
    """What a technician writes: a response's title, text and optional shortcut, checked
    and normalised (`parse`)."""

    title: str
    text: str
    shortcut: str | None

    @classmethod
    def parse(cls, title: str, text: str, shortcut: str | None, *,
              max_text_bytes: int) -> Draft:
        title = " ".join(title.split())
        if not 0 < len(title) <= MAX_TITLE or not _printable(title):
            raise InvalidInput(f"A title has 1 to {MAX_TITLE} printable characters.",
                               code="bad_title")
        if not text.strip() or len(text.encode()) > max_text_bytes:
            # Sent as a chat line, it is held to a chat line's limit.
            raise InvalidInput(f"A text has 1 to {max_text_bytes} bytes.", code="bad_canned_text")
        shortcut = (shortcut or "").strip().removeprefix("/").lower() or None
        if shortcut is not None and not _SHORTCUT.fullmatch(shortcut):
            raise InvalidInput(
                f"A shortcut has 1 to {MAX_SHORTCUT} letters, digits, '-' or '_', starting "
                "with a letter or digit.", code="bad_shortcut")
        return cls(title, text, shortcut)


def _printable(text: str) -> bool:
    return not any(unicodedata.category(char).startswith("C") for char in text)


@dataclasses.dataclass(frozen=True, slots=True)
class CannedResponse:
    id: int
    shelf: Shelf
    title: str
    text: str
    shortcut: str | None
    created_at: float
    updated_at: float

    def matches(self, query: str) -> bool:
        """Whether `query` is in the title, the text or the shortcut (any case)."""
        needle = query.casefold()
        return any(needle in field.casefold()
                   for field in (self.title, self.text, self.shortcut or ""))
