"""People's text made safe to show: bidi controls shown instead of obeyed (the pages,
the transcripts and the emails alike)."""

from __future__ import annotations

import re

# Embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): a name or a line
# holding one could reorder the text after it, so it is shown as a marker instead.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def inert(text: str) -> str:
    """`text` with each bidi control replaced by a visible "[U+202E]" (as the pages do)."""
    return _BIDI_CONTROLS.sub(lambda match: f"[U+{ord(match.group(0)):04X}]", text)
