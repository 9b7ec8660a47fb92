"""A transcript as text and HTML outside the web pages (the emailed copies), from the same
templates the pages and exports use (beside this file; web/app.py loads them too)."""

from __future__ import annotations

from pathlib import Path

import jinja2

from .build import Transcript, plain
from .sentences import Gettext
from .text import inert

TEMPLATES = Path(__file__).parent / "templates"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)
_ENV.filters["inert"] = inert


def render(transcript: Transcript, _: Gettext, lang: str) -> tuple[str, str]:
    """(text, html) of `transcript` in `lang`, whose translations `_` gives."""
    values = {"transcript": transcript, "plain": plain, "_": _, "lang": lang}
    return (_ENV.get_template("transcript.txt").render(values),
            _ENV.get_template("transcript.html").render(values))
