"""Translations: the German catalog is complete.

The catalog checks extract the template strings with Babel itself, so a new ``_("...")``
without a German translation fails here until ``make i18n`` has been run and the new
entries in web/locale/de/LC_MESSAGES/messages.po are translated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "web" / "templates"
LOCALE = ROOT / "web" / "locale"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


# -- the catalogs ------------------------------------------------------------------------


def _source_messages() -> Iterator[tuple[str, str]]:
    """(msgid, "file:line") for every _() string in the templates and in web/ and broker/."""
    for path in sorted([*TEMPLATES.rglob("*"), *(ROOT / "broker").rglob("templates/*")]):
        if path.suffix in (".html", ".txt") and "delivery" not in path.parts:
            for lineno, message, _comments, _context in extract_from_file(
                    babel_extract, str(path)):
                for msgid in message if isinstance(message, tuple) else (message,):
                    if msgid:
                        yield msgid, f"{path.relative_to(ROOT)}:{lineno}"
    for package in ("web", "broker"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for lineno, message, _comments, _context in extract_from_file("python", str(path)):
                for msgid in message if isinstance(message, tuple) else (message,):
                    if msgid:
                        yield msgid, f"{path.relative_to(ROOT)}:{lineno}"


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


@pytest.fixture(scope="module")
def source_messages() -> dict[str, str]:
    found: dict[str, str] = {}
    for msgid, where in _source_messages():
        found.setdefault(msgid, where)
    return found


@pytest.fixture(scope="module")
def german() -> Catalog:
    return _read(LOCALE / "de" / "LC_MESSAGES" / "messages.po", "de")


def test_templates_have_translatable_strings(source_messages: dict[str, str]) -> None:
    # Guards the extraction itself: if the extractor found nothing, the checks below
    # would pass vacuously.
    assert len(source_messages) > 50
    assert "Join a support session" in source_messages
    assert "%(name)s joined" in source_messages  # inside chat.html's JSON dict


def test_every_template_string_has_a_german_translation(
        source_messages: dict[str, str], german: Catalog) -> None:
    missing = []
    for msgid, where in source_messages.items():
        message = german.get(msgid)
        if message is None or not message.string or not str(message.string).strip():
            missing.append(f"{where}: {msgid!r}")
        elif message.fuzzy:
            missing.append(f"{where}: {msgid!r} (fuzzy)")
    assert not missing, "untranslated (run `make i18n`, then translate):\n" + "\n".join(missing)


def test_german_translations_keep_their_placeholders(german: Catalog) -> None:
    for message in german:
        if message.id and message.string:
            assert sorted(PLACEHOLDER.findall(str(message.id))) == sorted(
                PLACEHOLDER.findall(str(message.string))), message.id
    assert not [(message.id, errors) for message, errors in german.check()]


def test_template_file_lists_every_string(source_messages: dict[str, str]) -> None:
    template = _read(LOCALE / "messages.pot")
    stale = sorted(msgid for msgid in source_messages if template.get(msgid) is None)
    assert not stale, f"messages.pot is out of date (run `make i18n`): {stale}"


def test_german_catalog_is_real_utf8_german(german: Catalog) -> None:
    raw = (LOCALE / "de" / "LC_MESSAGES" / "messages.po").read_text("utf-8")
    assert "Schlüssel" in raw and "\\u00" not in raw
    assert german.get("Support key") is not None
    assert german.get("Support key").string == "Support-Schlüssel"

