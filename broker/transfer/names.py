"""File names as senders give them, made safe to show and to put into a header.

A name arrives in the tus ``Upload-Metadata`` and is chosen by whoever uploads, so it
may carry a path (``../../etc/passwd``), control characters (a CR LF that would end a
header), bidirectional overrides (``invoice\u202efdp.exe`` shows as ``invoiceexe.pdf``)
or a Windows device name. `display_name` keeps what a person would recognise and drops
the rest; `content_disposition` builds the download header from it, with an ASCII
fallback and the RFC 5987 ``filename*`` for the real name.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

MAX_NAME_CHARS = 200
FALLBACK_NAME = "file"

# Characters Windows refuses in names, and the path separators of every system.
_RESERVED_CHARS = re.compile(r'[<>:"/\\|?*]')
_WINDOWS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{n}" for n in range(10)]
    + [f"LPT{n}" for n in range(10)])
_ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9._()\[\]+= -]")


def display_name(raw: str) -> str:
    """A name without path, control or formatting characters, at most 200 characters."""
    # Only the last path component counts, whichever separator the sender's system uses.
    name = re.split(r"[/\\]", unicodedata.normalize("NFC", raw))[-1]
    # Cc: controls (CR, LF, NUL, ...); Cf: formatting (bidi overrides, zero-width);
    # Zl/Zp: line and paragraph separators; Cs/Co/Cn: surrogates, private use, unassigned.
    name = "".join(" " if ch in "\t\n\r\x0b\x0c" or unicodedata.category(ch) in ("Zl", "Zp", "Zs")
                   else ch for ch in name
                   if ch in "\t\n\r\x0b\x0c"
                   or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    name = _RESERVED_CHARS.sub("_", name)
    name = " ".join(name.split()).strip(". ")
    if not name:
        return FALLBACK_NAME
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    if stem.split(".")[0].upper() in _WINDOWS_DEVICES:
        name = "_" + name
    if len(name) > MAX_NAME_CHARS:
        keep = extension[:20]
        name = name[:MAX_NAME_CHARS - len(keep) - 1].rstrip(". ") + "." + keep if keep \
            else name[:MAX_NAME_CHARS]
    return name


def extension_of(name: str) -> str:
    """The lower-case extension without its dot ("" when there is none)."""
    stem, dot, extension = name.rpartition(".")
    return extension.lower() if dot and stem else ""


def ascii_name(name: str) -> str:
    """An ASCII stand-in for clients that do not read ``filename*``."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    folded = _ASCII_UNSAFE.sub("_", folded).strip(". ")
    return folded or FALLBACK_NAME


def content_disposition(name: str) -> str:
    """``attachment`` with both the ASCII fallback and the UTF-8 name (RFC 6266, 5987)."""
    safe = display_name(name)
    return (f'attachment; filename="{ascii_name(safe)}"; '
            f"filename*=UTF-8''{quote(safe, safe='')}")
