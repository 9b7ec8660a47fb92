"""A session's readable transcript: sentences in the reader's language and time zone, for
the pages, the exports and the emailed copies."""

from .build import MAX_EVENTS, Day, Line, Reader, Transcript, build, known_zone, plain
from .render import TEMPLATES, render
from .sentences import Gettext, Piece, Sentence, Sentences
from .service import Transcripts

__all__ = ["MAX_EVENTS", "TEMPLATES", "Day", "Gettext", "Line", "Piece", "Reader", "Sentence",
           "Sentences", "Transcript", "Transcripts", "build", "known_zone", "plain", "render"]
