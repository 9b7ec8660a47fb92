"""Translations at the edge (the catalogs are broker/i18n.py).

A request's language: ``?lang=`` (remembered in a cookie), then the cookie, then
Accept-Language, then the default from settings.
"""

from __future__ import annotations

from aiohttp import web

from broker.i18n import LANGUAGES, Translations

LANG_COOKIE = "lang"
__all__ = ["LANGUAGES", "LANG_COOKIE", "Catalogs"]


class Catalogs(Translations):
    """The broker's catalogs, and the language a request asks for."""

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
