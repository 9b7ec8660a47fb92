"""Chat text to safe HTML: everything escaped, http(s) links made clickable, and
bidirectional controls shown instead of obeyed (`inert`)."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from broker.transcripts.text import inert

__all__ = ["inert", "linkify"]

_URL = re.compile(r"\bhttps?://[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""


def linkify(text: str) -> Markup:
    text = inert(text)
    parts: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        end = match.start() + len(url)
        parts.append(str(escape(text[position:match.start()])))
        parts.append(f'<a href="{escape(url)}" rel="noopener noreferrer nofollow" '
                     f'target="_blank">{escape(url)}</a>')
        position = end
    parts.append(str(escape(text[position:])))
    return Markup("".join(parts))  # noqa: S704 - every part above is escaped
