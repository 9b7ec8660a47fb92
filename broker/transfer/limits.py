"""What the broker takes: file types judged by content, sizes, quotas, disk space, rates.

A file's type is judged by its first bytes ("magic"), not by its name: a program renamed
``invoice.pdf`` does not start with ``%PDF-`` and is refused when PDF is the only type
allowed. Each extension belongs to a *family* of contents (``.docx``, ``.xlsx`` and
``.zip`` are all ZIP archives; ``.xls`` and ``.doc`` are OLE compound files); the content
must be of the extension's family, and an extension without a family (``.txt``, ``.csv``)
must not hold a recognised binary format.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import InsufficientStorage, InvalidInput, TooLarge, TypeNotAllowed

# Enough for every signature below, and for a fair guess whether a file is text.
SNIFF_BYTES = 512


class Family(enum.StrEnum):
    PDF = "pdf"
    ZIP = "zip"
    OLE = "ole"
    JPEG = "jpeg"
    PNG = "png"
    GIF = "gif"
    WEBP = "webp"
    BMP = "bmp"
    TIFF = "tiff"
    GZIP = "gzip"
    SEVEN_ZIP = "7z"
    RAR = "rar"
    EXE = "exe"
    ELF = "elf"
    MP4 = "mp4"
    TEXT = "text"


# (offset, magic) -> family, most specific first.
_SIGNATURES: list[tuple[int, bytes, Family]] = [
    (0, b"%PDF-", Family.PDF),
    (0, b"PK\x03\x04", Family.ZIP),
    (0, b"PK\x05\x06", Family.ZIP),  # an empty archive
    (0, b"PK\x07\x08", Family.ZIP),  # a spanned archive
    (0, bytes.fromhex("d0cf11e0a1b11ae1"), Family.OLE),
    (0, b"\xff\xd8\xff", Family.JPEG),
    (0, b"\x89PNG\r\n\x1a\n", Family.PNG),
    (0, b"GIF87a", Family.GIF),
    (0, b"GIF89a", Family.GIF),
    (0, b"II*\x00", Family.TIFF),
    (0, b"MM\x00*", Family.TIFF),
    (0, b"\x1f\x8b", Family.GZIP),
    (0, b"7z\xbc\xaf\x27\x1c", Family.SEVEN_ZIP),
    (0, b"Rar!\x1a\x07", Family.RAR),
    (0, b"MZ", Family.EXE),
    (0, b"\x7fELF", Family.ELF),
    (4, b"ftyp", Family.MP4),
]

_EXTENSIONS: dict[str, Family] = {
    "pdf": Family.PDF,
    "zip": Family.ZIP, "docx": Family.ZIP, "xlsx": Family.ZIP, "pptx": Family.ZIP,
    "odt": Family.ZIP, "ods": Family.ZIP, "odp": Family.ZIP, "jar": Family.ZIP,
    "epub": Family.ZIP, "apk": Family.ZIP,
    "xls": Family.OLE, "doc": Family.OLE, "ppt": Family.OLE, "msg": Family.OLE,
    "msi": Family.OLE,
    "jpg": Family.JPEG, "jpeg": Family.JPEG, "png": Family.PNG, "gif": Family.GIF,
    "webp": Family.WEBP, "bmp": Family.BMP, "tif": Family.TIFF, "tiff": Family.TIFF,
    "gz": Family.GZIP, "tgz": Family.GZIP, "7z": Family.SEVEN_ZIP, "rar": Family.RAR,
    "exe": Family.EXE, "dll": Family.EXE, "mp4": Family.MP4, "m4a": Family.MP4,
    "mov": Family.MP4,
    "txt": Family.TEXT, "log": Family.TEXT, "csv": Family.TEXT, "json": Family.TEXT,
    "xml": Family.TEXT, "md": Family.TEXT, "ini": Family.TEXT, "cfg": Family.TEXT,
    "conf": Family.TEXT, "yaml": Family.TEXT, "yml": Family.TEXT,
}

_MIME_BY_EXTENSION = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "xls": "application/vnd.ms-excel", "doc": "application/msword",
    "ppt": "application/vnd.ms-powerpoint", "msg": "application/vnd.ms-outlook",
    "msi": "application/x-msi", "epub": "application/epub+zip",
    "csv": "text/csv", "json": "application/json", "xml": "application/xml",
    "m4a": "audio/mp4", "mov": "video/quicktime",
}
_MIME_BY_FAMILY = {
    Family.PDF: "application/pdf", Family.ZIP: "application/zip",
    Family.OLE: "application/x-ole-storage", Family.JPEG: "image/jpeg",
    Family.PNG: "image/png", Family.GIF: "image/gif", Family.WEBP: "image/webp",
    Family.BMP: "image/bmp", Family.TIFF: "image/tiff", Family.GZIP: "application/gzip",
    Family.SEVEN_ZIP: "application/x-7z-compressed", Family.RAR: "application/vnd.rar",
    Family.EXE: "application/vnd.microsoft.portable-executable",
    Family.ELF: "application/x-executable", Family.MP4: "video/mp4",
    Family.TEXT: "text/plain",
}
OCTET_STREAM = "application/octet-stream"


def sniff(head: bytes) -> Family | None:
    """The family the first bytes of a file belong to, or None when unrecognised."""
    for offset, magic, family in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return family
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Family.WEBP
    if head[:2] == b"BM" and len(head) >= 14:
        return Family.BMP
    if _looks_like_text(head):
        return Family.TEXT
    return None


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # only a character cut at the end is forgiven
            return False
        text = head[:exc.start].decode("utf-8")
    return all(ch.isprintable() or ch in "\t\r\n\f" for ch in text)


def content_type(family: Family | None, extension: str) -> str:
    """The MIME type to show and serve: the extension's, when the content agrees."""
    if family is None:
        return OCTET_STREAM
    if _EXTENSIONS.get(extension) is family and extension in _MIME_BY_EXTENSION:
        return _MIME_BY_EXTENSION[extension]
    return _MIME_BY_FAMILY[family]


def parse_allowed(value: str) -> frozenset[str]:
    """``"PDF, .zip,jpg"`` -> {"pdf", "zip", "jpg"}; empty means every type."""
    found = set()
    for item in value.split(","):
        extension = item.strip().lower().lstrip(".")
        if not extension:
            continue
        if not extension.isalnum() or len(extension) > 16:
            raise InvalidInput(f"transfer_allowed_types: {item.strip()!r} is not an extension")
        found.add(extension)
    return frozenset(found)


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """The limits a file must stay within. Zero means no limit."""

    max_bytes: int
    allowed: frozenset[str]
    session_quota_bytes: int
    min_free_bytes: int

    def check_size(self, size: int) -> None:
        if size < 0:
            raise InvalidInput("Upload-Length must not be negative.")
        if self.max_bytes and size > self.max_bytes:
            raise TooLarge(f"Files are limited to {format_bytes(self.max_bytes)}; this one has "
                           f"{format_bytes(size)}.")

    def check_quota(self, size: int, used: int) -> None:
        if self.session_quota_bytes and used + size > self.session_quota_bytes:
            raise TooLarge(
                f"This session may hold {format_bytes(self.session_quota_bytes)} of files; "
                f"{format_bytes(used)} are taken, so {format_bytes(size)} more do not fit.",
                code="quota_exceeded")

    def check_extension(self, extension: str) -> None:
        if self.allowed and extension not in self.allowed:
            names = ", ".join(sorted(e.upper() for e in self.allowed))
            raise TypeNotAllowed(
                f"Only these file types are accepted: {names}.")

    def check_content(self, extension: str, family: Family | None) -> None:
        """Refuse content that does not match the extension, when types are restricted."""
        if not self.allowed:
            return
        expected = _EXTENSIONS.get(extension)
        if expected is None or expected is Family.TEXT:
            ok = family in (None, Family.TEXT)
        else:
            ok = family is expected
        if not ok:
            raise TypeNotAllowed(
                f"The content of this file is not a {extension.upper()} file "
                f"(it looks like {'unknown data' if family is None else family.value.upper()}).",
                code="type_mismatch")

    def check_disk(self, directory: Path, incoming: int) -> None:
        """Refuse when writing `incoming` more bytes would leave less than the floor free."""
        free = shutil.disk_usage(directory).free
        if free - incoming < self.min_free_bytes:
            raise InsufficientStorage(
                "The broker is running out of disk space and cannot take this file now.")


def format_bytes(count: int) -> str:
    """Bytes for people, in decimal units as file managers show them: "20 MB"."""
    if count < 1000:
        return f"{count} bytes"
    value = float(count)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            break
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


class Throttle:
    """A token bucket in bytes per second (0: unlimited), shared by whoever holds it.

    Rates are about real elapsed time, so this reads a monotonic timer, not the Clock.
    A transfer takes what it moved and sleeps off any debt, so the socket stops being
    read (or written) and TCP slows the peer down. Downloads sent from a worker thread
    take from the same buckets as the event loop's transfers, hence the lock.
    """

    def __init__(self, rate: int, *, burst_seconds: float = 0.25,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._burst = rate * burst_seconds
        self._monotonic = monotonic
        self._level = self._burst
        self._at = monotonic()
        self._lock = threading.Lock()

    def delay_for(self, amount: int) -> float:
        """Take `amount` bytes; the seconds to wait before moving more."""
        if not self.rate:
            return 0.0
        with self._lock:
            now = self._monotonic()
            self._level = min(self._burst, self._level + (now - self._at) * self.rate) - amount
            self._at = now
            return 0.0 if self._level >= 0 else -self._level / self.rate

    async def take(self, amount: int, *others: Throttle) -> None:
        delay = max([self.delay_for(amount), *(o.delay_for(amount) for o in others)])
        if delay > 0:
            await asyncio.sleep(delay)
