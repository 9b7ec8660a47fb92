"""The access log, without the credentials some addresses carry.

A join link (``/j/<token>``) redeems a support key, an agent link (``/a/<token>``) admits
an agent, and a few addresses carry a key or a token in their query (``/join?key=…``, a
language switch back to ``?next=/j/<token>``). Whoever reads a log line with one of
them could use it first, so every line has them cut: ``/j/…``, ``key=…``. The same cut
applies to the ``Referer`` and to any ``sbp_``/``sbt_`` token wherever it appears, and
`supportbroker serve` formats every other log line through it too.
"""

from __future__ import annotations

import logging
import re
from typing import Final

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

CUT: Final = "…"
# Percent-escapes of unreserved characters (RFC 3986), which mean the character itself:
# `/%6A/<token>` is a join link too, and `?%6Bey=` a key.
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Path prefixes whose next segment is a credential: join links (web/pages.py) and agent
# links (web/agent.py, LINK_PREFIX), also percent-encoded inside another address's query.
_LINK = re.compile(r"((?:/|%2f)(?:j|a)(?:/|%2f))[^/?#&;\s\"']+", re.IGNORECASE)
# Query parameters that carry a credential, by name.
_QUERY = re.compile(
    r"([?&;](?:key|code|token|link|password|secret|participant_token|access_token)=)"
    r"[^&#;\s\"']*", re.IGNORECASE)
# Bearer tokens by their prefixes (broker/credentials.py), wherever they appear.
_TOKEN = re.compile(r"(sb[pt]_)[A-Za-z0-9_\-]{16,}")


def _unescape_unreserved(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else match.group(0)


def redact(text: str) -> str:
    """`text` (an address, a path or a whole line) with every credential in it cut."""
    text = _ESCAPE.sub(_unescape_unreserved, text)
    text = _LINK.sub(rf"\g<1>{CUT}", text)
    text = _QUERY.sub(rf"\g<1>{CUT}", text)
    return _TOKEN.sub(rf"\g<1>{CUT}", text)


class RedactingAccessLogger(AbstractAccessLogger):
    """aiohttp's access log line (client, request line, status, size, referrer, user
    agent, and the time taken), with `redact` applied to the request's target and the
    referrer. The time of day comes from the logging format, as for every other line."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d "%s" "%s" %.3fs', request.remote or "-",
            request.method, redact(request.raw_path), request.version.major,
            request.version.minor, response.status, response.body_length,
            redact(request.headers.get("Referer", "-")),
            request.headers.get("User-Agent", "-"), time)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


class RedactingFormatter(logging.Formatter):
    """A log formatter that cuts credentials from whole lines, tracebacks included: the
    safety net for lines the broker does not write itself, such as aiohttp's report of a
    malformed request, which quotes the request line."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
