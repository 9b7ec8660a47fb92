"""The transcript at the edge: the reader's language and time zone from the request, and
the templates' context. The transcript itself is broker/transcripts/build.py.

The time zone is the reader's: the pages remember the browser's in the `tz` cookie
(web/static/chat-core.js), and `?tz=` names one explicitly; without either, UTC. A name
the system's time zone database does not know is UTC too, and the transcript says which
zone its times are in.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.core import Broker
from broker.technicians import Technician
from broker.transcripts import Reader, Transcript, known_zone, plain

from .state import CATALOGS

TZ_COOKIE = "tz"


def zone_of(request: web.Request) -> str:
    """The reader's time zone: `?tz=`, else the `tz` cookie, else UTC; UTC as well for a
    name that is not a zone of the system's database."""
    for candidate in (request.query.get("tz"), request.cookies.get(TZ_COOKIE)):
        if known_zone(candidate):
            return str(candidate)
    return "UTC"


async def load(request: web.Request, broker: Broker, session_id: str,
               technician: Technician) -> Transcript:
    """The transcript of the session for `technician`, in the request's language and
    time zone; Forbidden unless they may read it (SessionService.for_transcript: also
    after handing the session over or leaving it)."""
    session, notes = await broker.sessions.for_transcript(session_id, technician)
    catalogs = request.app[CATALOGS]
    lang = catalogs.negotiate(request)
    return await broker.transcripts.readable(session, notes, catalogs.gettext(lang),
                                             Reader(lang, zone_of(request)))


def context(transcript: Transcript) -> dict[str, Any]:
    """What the transcript templates (transcript.html, .txt, transcript_page.html) get."""
    return {"transcript": transcript, "plain": plain}
