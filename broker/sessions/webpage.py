"""Pushing a web page to the end user (seed 000): a technician's chat line that starts
with ``open:`` names an address the end user's page opens in a new window; one that
starts with ``goto:`` names an address the website around an embedded chat (the chat
button, docs/portal.md) goes to, the chat going on there.

The broker recognises the command when it stores the line, so every client reads the
same answer from the event (`open_url`, `goto_url`) instead of parsing chat text its own way, and
only ``http`` and ``https`` addresses ever get there: ``open: javascript:…`` stays a
plain chat line. An address without a scheme (``open: example.com/help``) means
``https://``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

PREFIX = "open:"
GOTO_PREFIX = "goto:"
MAX_URL = 2048
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# A host as people type it: letters, digits, dots, dashes, an optional port; IPv6 in [].
_HOST = re.compile(r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


def open_url(text: str) -> str | None:
    """The http(s) address a technician's ``open: <address> …`` line asks to open, or
    None when the line is no such command or the address is not one the page may open."""
    return _address(text, PREFIX)


def goto_url(text: str) -> str | None:
    """The http(s) address a technician's ``goto: <address> …`` line sends the website
    around an embedded chat to, or None (as `open_url`)."""
    return _address(text, GOTO_PREFIX)


def _address(text: str, prefix: str) -> str | None:
    if not text[:len(prefix)].lower() == prefix:
        return None
    words = text[len(prefix):].split(maxsplit=1)
    if not words:
        return None
    address = words[0]
    if len(address) > MAX_URL or not address.isprintable():
        return None
    typed_scheme = bool(_SCHEME.match(address)) and not _looks_like_host_and_port(address)
    if not typed_scheme:
        address = "https:" + address if address.startswith("//") else "https://" + address
    try:
        parts = urlsplit(address)
        port = parts.port  # raises ValueError for a port out of range
    except ValueError:
        return None
    host = parts.netloc.rpartition("@")[2]
    if (parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc
            or not _HOST.match(host) or port == 0):
        return None
    if not typed_scheme and not _named_like_a_site(parts.hostname or ""):
        return None  # "open: the printer settings" is a sentence, not an address
    return address


def _named_like_a_site(hostname: str) -> bool:
    return "." in hostname or ":" in hostname or hostname == "localhost"


def _looks_like_host_and_port(address: str) -> bool:
    """``localhost:8080/x`` has a "scheme" to urlsplit; it is a host with a port."""
    head = address.split("/", 1)[0]
    return bool(re.fullmatch(r"[A-Za-z0-9.-]+:\d{1,5}", head))
