"""Writing one file at rest while its upload arrives, in the record format of
broker/transfer/records.py: whole chunks to the data file, the partial last chunk to the
tail file at each commit, and after a crash the writer rebuilt from what the disk holds.

Everything here is blocking file I/O and runs in the transfer service's worker threads.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .limits import SNIFF_BYTES
from .records import (
    CHUNK,
    NONCE_BYTES,
    OVERHEAD,
    RECORD,
    TAIL_MAGIC,
    CorruptBlob,
    read_record,
    record_aad,
    stored_size,
    tail_aad,
)

# Written data a writer lets the page cache hold before it starts writing it to the disk.
WRITE_BEHIND = 4 * 1024 * 1024
_MAX_IOV = 512


class Mark:
    """Where a writer stood, to go back to when a request's data is refused."""

    __slots__ = ("head", "offset", "sha256", "tail")

    def __init__(self, offset: int, tail: bytes, sha256: Any, head: bytes) -> None:
        self.offset = offset
        self.tail = tail
        self.sha256 = sha256
        self.head = head


class BlobWriter:
    """Appends plaintext to one file: whole chunks to the data file, the partial last
    chunk in memory until `commit` writes it to the tail file. One thread at a time.

    Data arrives as the pieces the socket delivered; a piece is encrypted straight from
    where it lies when it covers a whole chunk, and copied once into the chunk being
    assembled otherwise. The records of one `feed` go to the disk in one ``pwritev``, and
    every WRITE_BEHIND bytes the writer starts their writeback (see `_write_behind`), so
    the page cache never holds much unwritten data.
    """

    def __init__(self, tail_path: Path, blob_id: str, key: bytes, size: int, fd: int, *,
                 offset: int = 0, tail: bytes = b"", sha256: Any = None,
                 head: bytes = b"") -> None:
        if len(tail) != offset % CHUNK:
            raise ValueError("the tail is the part of the last chunk stored so far")
        self._tail_path = tail_path
        self.blob_id = blob_id
        self.size = size
        self._aead = AESGCM(key)
        self._fd = fd
        self.offset = offset
        self._chunk = bytearray(CHUNK)
        self._chunk[:len(tail)] = tail
        self._fill = len(tail)
        self._sha256 = sha256 if sha256 is not None else hashlib.sha256()
        self.head = head
        self._unsynced = 0

    @classmethod
    def recover(cls, tail_path: Path, blob_id: str, key: bytes, size: int,
                fd: int) -> BlobWriter:
        aead = AESGCM(key)
        committed: int | None = None
        tail = b""
        try:
            raw = tail_path.read_bytes()
            if raw[:4] != TAIL_MAGIC or len(raw) < 12 + OVERHEAD:
                raise ValueError("not a tail file")
            offset = int.from_bytes(raw[4:12], "big")
            tail = aead.decrypt(raw[12:12 + NONCE_BYTES], raw[12 + NONCE_BYTES:],
                                tail_aad(blob_id, offset))
            if offset > size or len(tail) != offset % CHUNK:
                raise ValueError("a tail that does not fit the upload")
            committed = offset
        except (OSError, ValueError, InvalidTag):
            tail = b""
        stored_records = os.fstat(fd).st_size // RECORD
        wanted = committed // CHUNK if committed is not None else min(stored_records,
                                                                      size // CHUNK)
        sha256 = hashlib.sha256()
        head = b""
        good = 0
        for index in range(wanted):
            try:
                chunk = read_record(fd, aead, blob_id, index, CHUNK)
            except CorruptBlob:
                break
            sha256.update(chunk)
            if len(head) < SNIFF_BYTES:
                head += chunk[:SNIFF_BYTES - len(head)]
            good += 1
        if committed is None or good < wanted:
            committed, tail = good * CHUNK, b""
        sha256.update(tail)
        if len(head) < SNIFF_BYTES:
            head += tail[:SNIFF_BYTES - len(head)]
        os.ftruncate(fd, good * RECORD)  # records past the committed length were never acked
        writer = cls(tail_path, blob_id, key, size, fd, offset=committed, tail=tail,
                     sha256=sha256, head=head)
        writer.commit(durable=False)
        return writer

    @property
    def sha256_hex(self) -> str:
        return str(self._sha256.hexdigest())

    @property
    def _tail(self) -> memoryview:
        return memoryview(self._chunk)[:self._fill]

    def feed(self, pieces: Sequence[bytes | bytearray],
             request_hashes: tuple[Any, ...] = ()) -> None:
        """Append `pieces`: hash them, encrypt and write each chunk they complete."""
        buffers: list[bytes] = []
        first = self.offset // CHUNK
        index = first
        for piece in pieces:
            for running in request_hashes:
                running.update(piece)
            self._sha256.update(piece)
            if len(self.head) < SNIFF_BYTES:
                self.head += bytes(piece[:SNIFF_BYTES - len(self.head)])
            view = memoryview(piece)
            self.offset += len(view)
            while view:
                if self._fill == 0 and len(view) >= CHUNK:
                    plaintext, view = view[:CHUNK], view[CHUNK:]
                else:
                    take = min(CHUNK - self._fill, len(view))
                    self._chunk[self._fill:self._fill + take] = view[:take]
                    self._fill += take
                    view = view[take:]
                    if self._fill < CHUNK:
                        continue
                    plaintext, self._fill = memoryview(self._chunk), 0
                nonce = secrets.token_bytes(NONCE_BYTES)
                buffers += (nonce, self._aead.encrypt(nonce, plaintext,
                                                      record_aad(self.blob_id, index)))
                index += 1
        self._write(first, buffers)

    def _write(self, first: int, buffers: list[bytes]) -> None:
        position = first * RECORD
        for start in range(0, len(buffers), _MAX_IOV):
            batch = buffers[start:start + _MAX_IOV]
            expected = sum(len(b) for b in batch)
            if os.pwritev(self._fd, batch, position) != expected:
                raise OSError("short write to the transfer directory")
            position += expected
            self._unsynced += expected
        if self._unsynced >= WRITE_BEHIND:
            _write_behind(self._fd, position - self._unsynced, self._unsynced)
            self._unsynced = 0

    def mark(self) -> Mark:
        return Mark(self.offset, bytes(self._tail), self._sha256.copy(), self.head)

    def rollback(self, mark: Mark) -> None:
        """Forget everything fed since `mark` (its whole chunks are cut off the data file)."""
        self.offset, self._sha256, self.head = mark.offset, mark.sha256, mark.head
        self._chunk[:len(mark.tail)] = mark.tail
        self._fill = len(mark.tail)
        os.ftruncate(self._fd, (mark.offset // CHUNK) * RECORD)

    def commit(self, *, durable: bool) -> None:
        """Make the current length the one a restart resumes from. `durable` also forces
        it to the disk, so it survives a power cut, not only a crash of the broker."""
        if durable:
            os.fsync(self._fd)
            self._unsynced = 0
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, self._tail, tail_aad(self.blob_id, self.offset))
        scratch = self._tail_path.with_suffix(".tmp")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, TAIL_MAGIC + self.offset.to_bytes(8, "big") + nonce + sealed)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(scratch, self._tail_path)

    def finish(self) -> str:
        """Write the last partial chunk as the final record, force it all to the disk, and
        return the SHA-256 of the whole file. The tail file stays until `close(done=True)`."""
        if self.offset != self.size:
            raise ValueError("the upload is not complete")
        if self._fill:
            nonce = secrets.token_bytes(NONCE_BYTES)
            index = self.offset // CHUNK
            self._write(index, [nonce, self._aead.encrypt(
                nonce, self._tail, record_aad(self.blob_id, index))])
        os.ftruncate(self._fd, stored_size(self.size))
        os.fsync(self._fd)
        return self.sha256_hex

    def close(self, *, done: bool = False) -> None:
        os.close(self._fd)
        if done:
            self._tail_path.unlink(missing_ok=True)


def _write_behind(fd: int, offset: int, length: int) -> None:
    """Start writing a range to the disk now, without waiting for it.

    Left alone, the kernel lets gigabytes of a fast upload pile up in the page cache and
    then writes them in one burst, during which every other writer on the disk (the
    database's journal among them) stalls. On Linux, sync_file_range(2) starts the
    writeback of the range at once and leaves the pages cached, so the download that
    usually follows an upload reads memory, not the disk; elsewhere the writer waits for
    the disk.
    """
    if _sync_file_range is None or _sync_file_range(fd, offset, length,
                                                    _SYNC_FILE_RANGE_WRITE) != 0:
        os.fdatasync(fd)


def _libc_sync_file_range() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of the dirty pages, don't wait
_sync_file_range = _libc_sync_file_range()
