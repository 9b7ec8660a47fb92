"""The technician's closing form (issue 21): after a session ended, its technicians record
a category (from a list admins keep), whether the problem was resolved, and a ticket
number of their help desk.

Admins read and replace the categories as one JSON document (`ClosingConfig.to_json`,
`ClosingConfig.parse`), as they do the survey's questions (broker/survey). Each category
has a stable id (made from its first name when an admin adds it) and a name per language;
a closing keeps the id and the names it had then. Every field of the form is optional,
but a form sent with none is refused.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from typing import Any, Final

from ..clock import isoformat
from ..errors import InvalidInput

LANGUAGES: Final = ("en", "de")
MAX_CATEGORIES: Final = 50
MAX_NAME: Final = 80
MAX_TICKET: Final = 64
_ID: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_FIELDS: Final = frozenset({"category", "resolved", "ticket"})


@dataclasses.dataclass(frozen=True, slots=True)
class Category:
    """A category: its id and its name per language (at least one)."""

    id: str
    label: tuple[tuple[str, str], ...]  # (language, name)

    def __post_init__(self) -> None:
        if not _ID.match(self.id) or not self.label:
            raise ValueError(f"not a category: {self.id!r} {self.label!r}")

    def name(self, language: str) -> str:
        """Its name in `language`, else in English, else in any language it has."""
        names = dict(self.label)
        return names.get(language) or names.get("en") or self.label[0][1]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "label": dict(self.label)}


@dataclasses.dataclass(frozen=True, slots=True)
class ClosingConfig:
    """The categories the closing form offers, in the order admins gave them."""

    categories: tuple[Category, ...] = ()

    def find(self, category_id: str) -> Category | None:
        return next((c for c in self.categories if c.id == category_id), None)

    def to_json(self) -> dict[str, Any]:
        return {"categories": [c.to_json() for c in self.categories]}

    @classmethod
    def parse(cls, raw: Any) -> ClosingConfig:
        """The categories as an admin sent them (the shape of `to_json`; a new category
        without an id gets one from its name)."""
        if not isinstance(raw, dict) or set(raw) - {"categories"}:
            raise InvalidInput("The closing form's settings are an object of categories.",
                               code="invalid_categories")
        given = raw.get("categories", [])
        if not isinstance(given, list) or not all(isinstance(c, dict) for c in given):
            raise InvalidInput("categories is a list of objects.", code="invalid_categories")
        if len(given) > MAX_CATEGORIES:
            raise InvalidInput(f"At most {MAX_CATEGORIES} categories.",
                               code="invalid_categories")
        found: list[Category] = []
        for item in given:
            label = _label(item)
            category_id = item.get("id")
            if category_id is None:
                category_id = _new_id(label, {c.id for c in found} | _ids(given))
            if not isinstance(category_id, str) or not _ID.match(category_id):
                raise InvalidInput("A category's id is 1 to 40 lower-case letters, digits, "
                                   "- and _.", code="invalid_categories")
            if any(c.id == category_id for c in found):
                raise InvalidInput(f"The category {category_id} is listed twice.",
                                   code="invalid_categories")
            found.append(Category(category_id, label))
        names = [name.casefold() for c in found for lang, name in c.label if lang == "en"]
        if len(names) != len(set(names)):
            raise InvalidInput("Two categories have the same English name.",
                               code="invalid_categories")
        return cls(tuple(found))


@dataclasses.dataclass(frozen=True, slots=True)
class Closing:
    """A session's closing form as a technician saved it last."""

    session_id: str
    category: Category | None
    resolved: bool | None
    ticket: str | None
    technician_id: int | None  # None once that technician was deleted
    technician_name: str
    recorded_at: float

    def to_json(self) -> dict[str, Any]:
        return {"session_id": self.session_id,
                "category": None if self.category is None else self.category.to_json(),
                "resolved": self.resolved, "ticket": self.ticket,
                "recorded_by": {"id": self.technician_id, "name": self.technician_name},
                "recorded_at": isoformat(self.recorded_at)}


@dataclasses.dataclass(frozen=True, slots=True)
class Answers:
    """What a technician sent, checked: None where a field is left empty."""

    category: Category | None
    resolved: bool | None
    ticket: str | None


def check(config: ClosingConfig, raw: Any) -> Answers:
    """A closing form as a technician sent it, checked against the categories offered."""
    if not isinstance(raw, dict):
        raise InvalidInput("The closing form is a JSON object.", code="invalid_closing")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise InvalidInput(f"The closing form has no field {sorted(unknown)[0][:40]!r}.",
                           code="invalid_closing")
    category = None
    category_id = raw.get("category")
    if category_id is not None:
        if not isinstance(category_id, str):
            raise InvalidInput("category is a category's id.", code="invalid_closing")
        category = config.find(category_id)
        if category is None:
            raise InvalidInput("There is no such category; reload to see the list.",
                               code="unknown_category")
    resolved = raw.get("resolved")
    if resolved is not None and not isinstance(resolved, bool):
        raise InvalidInput("resolved is true or false.", code="invalid_closing")
    ticket = raw.get("ticket")
    if ticket is not None:
        if not isinstance(ticket, str):
            raise InvalidInput("ticket is text.", code="invalid_ticket")
        ticket = ticket.strip()
        if len(ticket) > MAX_TICKET:
            raise InvalidInput(f"A ticket number has at most {MAX_TICKET} characters.",
                               code="invalid_ticket")
        if not ticket.isprintable():
            raise InvalidInput("A ticket number is one line of printable characters.",
                               code="invalid_ticket")
    answers = Answers(category, resolved, ticket or None)
    if answers == Answers(None, None, None):
        raise InvalidInput("Fill in at least one field, or skip the form.",
                           code="empty_closing")
    return answers


def _ids(given: list[dict[str, Any]]) -> set[str]:
    return {c["id"] for c in given if isinstance(c.get("id"), str)}


def _label(item: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    label = item.get("label")
    if set(item) - {"id", "label"} or not isinstance(label, dict) \
            or set(label) - set(LANGUAGES):
        raise InvalidInput("A category is an id and a label mapping en and de to its "
                           "name.", code="invalid_categories")
    names = []
    for language in LANGUAGES:
        text = label.get(language)
        if text is None:
            continue
        if not isinstance(text, str):
            raise InvalidInput("A category's name is text.", code="invalid_categories")
        text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
        if len(text) > MAX_NAME:
            raise InvalidInput(f"A category's name has at most {MAX_NAME} characters.",
                               code="invalid_categories")
        if text:
            names.append((language, text))
    if not names:
        raise InvalidInput("A category needs a name.", code="invalid_categories")
    return tuple(names)


def _new_id(label: tuple[tuple[str, str], ...], taken: set[str]) -> str:
    """An id from the category's first name: its letters and digits in ASCII."""
    ascii_name = unicodedata.normalize("NFKD", label[0][1]).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:32] or "category"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate
