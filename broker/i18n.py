"""Translations from gettext catalogs (web/locale/<lang>/LC_MESSAGES/messages.po) via Babel,
for whatever the broker writes in people's languages: the pages (web/i18n.py adds the
request's language) and the emails it sends (broker/transcriptmail).

The .po files are compiled in memory at start-up, so the repository holds no binaries.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Callable
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("en", "de")
LOCALE_DIR = Path(__file__).resolve().parent.parent / "web" / "locale"


class Translations:
    """One compiled catalog per language; English is the source language."""

    def __init__(self, default: str) -> None:
        self.default = default
        self._translations: dict[str, gettext.NullTranslations] = {"en": gettext.NullTranslations()}
        for lang in LANGUAGES:
            po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
            if po.exists():
                with po.open("rb") as handle:
                    catalog = read_po(handle, locale=lang)
                buffer = io.BytesIO()
                write_mo(buffer, catalog)
                buffer.seek(0)
                self._translations[lang] = gettext.GNUTranslations(buffer)

    def gettext(self, lang: str) -> Callable[[str], str]:
        return self._translations.get(lang, self._translations["en"]).gettext
