"""Translations from gettext catalogs (web/locale/<lang>/LC_MESSAGES/messages.po) via Babel.

The .po files are compiled in memory at start-up, so the repository holds no binaries.
A request's language: ``?lang=`` (remembered in a cookie), then the cookie, then
Accept-Language, then the default from settings.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("en", "de")
LANG_COOKIE = "lang"
_LOCALE_DIR = Path(__file__).parent / "locale"


class Catalogs:
    """One compiled catalog per language; English is the source language."""

    def __init__(self, default: str) -> None:
        self.default = default
        self._translations: dict[str, gettext.NullTranslations] = {"en": gettext.NullTranslations()}
        for lang in LANGUAGES:
            po = _LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
            if po.exists():
                with po.open("rb") as handle:
                    catalog = read_po(handle, locale=lang)
                buffer = io.BytesIO()
                write_mo(buffer, catalog)
                buffer.seek(0)
                self._translations[lang] = gettext.GNUTranslations(buffer)

    def gettext(self, lang: str) -> Callable[[str], str]:
        return self._translations.get(lang, self._translations["en"]).gettext

    def negotiate(self, request: web.Request) -> str:
        for candidate in (request.query.get("lang"), request.cookies.get(LANG_COOKIE)):
            if candidate in LANGUAGES:
                return candidate
        return _from_accept_language(request.headers.get("Accept-Language", "")) or self.default


def _from_accept_language(header: str) -> str | None:
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            choices.append((-quality, index, primary))
    return min(choices)[2] if choices else None
