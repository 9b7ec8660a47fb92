"""Files at rest: encrypted records (broker/transfer/records.py) under random ids, in the
transfer directory, outside anything served.

The directory is the one seam of the storage: it creates a file's writer, resumes one
after a crash, opens a reader, removes a file and lists what it holds.

Everything here is blocking file I/O and runs in the transfer service's worker threads.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path

from .blobreader import BlobReader
from .blobwriter import BlobWriter

_BLOB_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class BlobStore:
    """The transfer directory. Paths come only from ids the broker made itself."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def new_id(self) -> str:
        return secrets.token_urlsafe(24)

    def data_path(self, blob_id: str) -> Path:
        if not _BLOB_ID.match(blob_id):
            raise ValueError(f"not a blob id: {blob_id!r}")
        return self.root / blob_id

    def tail_path(self, blob_id: str) -> Path:
        return self.data_path(blob_id).with_name(blob_id + ".tail")

    def create(self, blob_id: str, key: bytes, size: int) -> BlobWriter:
        fd = os.open(self.data_path(blob_id), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        writer = BlobWriter(self.tail_path(blob_id), blob_id, key, size, fd)
        writer.commit(durable=False)
        return writer

    def resume(self, blob_id: str, key: bytes, size: int) -> BlobWriter:
        """The writer of a partly received file, with its SHA-256 rebuilt from the disk."""
        fd = os.open(self.data_path(blob_id), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            return BlobWriter.recover(self.tail_path(blob_id), blob_id, key, size, fd)
        except BaseException:
            os.close(fd)
            raise

    def reader(self, blob_id: str, key: bytes, size: int) -> BlobReader:
        return BlobReader(self.data_path(blob_id), blob_id, key, size)

    def remove(self, blob_id: str) -> None:
        for path in (self.data_path(blob_id), self.tail_path(blob_id),
                     self.tail_path(blob_id).with_suffix(".tmp")):
            path.unlink(missing_ok=True)

    def stored_ids(self, older_than: float) -> set[str]:
        """Ids of the files in the directory last changed before `older_than` (a time
        stamp), for finding files the database forgot. Recent ones are left alone: another
        node sharing the directory may be creating them."""
        if not self.root.is_dir():
            return set()
        found = set()
        for path in self.root.iterdir():
            blob_id = path.name.split(".")[0]
            with contextlib.suppress(FileNotFoundError):
                if _BLOB_ID.match(blob_id) and path.stat().st_mtime < older_than:
                    found.add(blob_id)
        return found

