"""Files at rest: AES-256-GCM in fixed-size chunks, under random ids, outside anything served.

Layout of one file with id ``B`` in the transfer directory::

    B        records of CHUNK plaintext bytes each; record i at byte i * RECORD:
             a random 12-byte nonce, the ciphertext, the 16-byte tag
             (associated data: "sb-file", B and i, so records cannot be moved or swapped)
    B.tail   while receiving: the committed length and the partial last chunk, as one
             record of its own (associated data binds B and the length), replaced
             atomically at each commit

A range read seeks straight to the records it needs. The data file only ever receives
whole chunks while an upload runs; the partial last chunk lives in the tail file and is
re-encrypted with a fresh nonce each time it is written, so no nonce is used twice. The
tail file is the authority on how much of an upload is stored: after a crash, the upload
resumes from its length, and the records before it are decrypted again to rebuild the
running SHA-256 (a record that does not decrypt cuts the upload back to the records
before it). When the upload completes, the last partial chunk becomes the last record.

Each file has its own random 256-bit key, kept only wrapped (AES-GCM) by the master key,
in the database row. The data file alone, or the database alone, reveals nothing.

Everything here is blocking file I/O and runs in the transfer service's worker threads.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import os
import re
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..hashing import load_or_create_secret
from .limits import SNIFF_BYTES

CHUNK = 256 * 1024
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = NONCE_BYTES + TAG_BYTES
RECORD = CHUNK + OVERHEAD
_TAIL_MAGIC = b"SBT1"
# Written data a writer lets the page cache hold before it starts writing it to the disk.
WRITE_BEHIND = 4 * 1024 * 1024
_MAX_IOV = 512
_BLOB_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


MASTER_KEY_FILE = "transfer-master-key"


def load_master_key(transfer_master_key: str, data_dir: Path) -> bytes:
    """The master key from the setting (base64), or one generated in the data directory."""
    if transfer_master_key:
        return base64.b64decode(transfer_master_key)
    return load_or_create_secret(data_dir, MASTER_KEY_FILE)


class CorruptBlob(Exception):
    """Stored data that does not decrypt: damaged on disk, or not written by this broker."""


def _record_aad(blob_id: str, index: int) -> bytes:
    return b"sb-file|" + blob_id.encode() + b"|" + index.to_bytes(8, "big")


def _tail_aad(blob_id: str, offset: int) -> bytes:
    return b"sb-tail|" + blob_id.encode() + b"|" + offset.to_bytes(8, "big")


class KeyRing:
    """Wraps per-file keys with the master key (AES-256-GCM, bound to the file's id)."""

    def __init__(self, master: bytes) -> None:
        if len(master) != 32:
            raise ValueError("the transfer master key has 32 bytes")
        self._aead = AESGCM(master)

    def new_key(self, blob_id: str) -> tuple[bytes, str]:
        """A fresh file key and its wrapped form for the database."""
        key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(NONCE_BYTES)
        wrapped = nonce + self._aead.encrypt(nonce, key, b"sb-key|" + blob_id.encode())
        return key, base64.b64encode(wrapped).decode()

    def unwrap(self, blob_id: str, wrapped: str) -> bytes:
        raw = base64.b64decode(wrapped)
        try:
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                      b"sb-key|" + blob_id.encode())
        except InvalidTag as exc:
            raise CorruptBlob(f"the key of {blob_id} does not unwrap with this master key") \
                from exc


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
        writer = BlobWriter(self, blob_id, key, size, fd)
        writer.commit(durable=False)
        return writer

    def resume(self, blob_id: str, key: bytes, size: int) -> BlobWriter:
        """The writer of a partly received file, with its SHA-256 rebuilt from the disk."""
        fd = os.open(self.data_path(blob_id), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            return BlobWriter.recover(self, blob_id, key, size, fd)
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

    def __init__(self, store: BlobStore, blob_id: str, key: bytes, size: int, fd: int, *,
                 offset: int = 0, tail: bytes = b"", sha256: Any = None,
                 head: bytes = b"") -> None:
        if len(tail) != offset % CHUNK:
            raise ValueError("the tail is the part of the last chunk stored so far")
        self._store = store
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
    def recover(cls, store: BlobStore, blob_id: str, key: bytes, size: int,
                fd: int) -> BlobWriter:
        aead = AESGCM(key)
        committed: int | None = None
        tail = b""
        try:
            raw = store.tail_path(blob_id).read_bytes()
            if raw[:4] != _TAIL_MAGIC or len(raw) < 12 + OVERHEAD:
                raise ValueError("not a tail file")
            offset = int.from_bytes(raw[4:12], "big")
            tail = aead.decrypt(raw[12:12 + NONCE_BYTES], raw[12 + NONCE_BYTES:],
                                _tail_aad(blob_id, offset))
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
                chunk = _read_record(fd, aead, blob_id, index, CHUNK)
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
        writer = cls(store, blob_id, key, size, fd, offset=committed, tail=tail,
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
                                                      _record_aad(self.blob_id, index)))
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
        sealed = self._aead.encrypt(nonce, self._tail, _tail_aad(self.blob_id, self.offset))
        path = self._store.tail_path(self.blob_id)
        scratch = path.with_suffix(".tmp")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, _TAIL_MAGIC + self.offset.to_bytes(8, "big") + nonce + sealed)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(scratch, path)

    def finish(self) -> str:
        """Write the last partial chunk as the final record, force it all to the disk, and
        return the SHA-256 of the whole file. The tail file stays until `close(done=True)`."""
        if self.offset != self.size:
            raise ValueError("the upload is not complete")
        if self._fill:
            nonce = secrets.token_bytes(NONCE_BYTES)
            index = self.offset // CHUNK
            self._write(index, [nonce, self._aead.encrypt(
                nonce, self._tail, _record_aad(self.blob_id, index))])
        os.ftruncate(self._fd, _stored_size(self.size))
        os.fsync(self._fd)
        return self.sha256_hex

    def close(self, *, done: bool = False) -> None:
        os.close(self._fd)
        if done:
            self._store.tail_path(self.blob_id).unlink(missing_ok=True)


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


def _stored_size(size: int) -> int:
    full, rest = divmod(size, CHUNK)
    return full * RECORD + (rest + OVERHEAD if rest else 0)


def _read_record(fd: int, aead: AESGCM, blob_id: str, index: int, length: int) -> bytes:
    # Sliced as a memoryview: slicing bytes would copy the whole record, and on a fast
    # download those copies (fresh memory each time) cost more than the decryption.
    raw = memoryview(os.pread(fd, length + OVERHEAD, index * RECORD))
    if len(raw) != length + OVERHEAD:
        raise CorruptBlob(f"record {index} of {blob_id} is cut short")
    try:
        return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _record_aad(blob_id, index))
    except InvalidTag as exc:
        raise CorruptBlob(f"record {index} of {blob_id} does not decrypt") from exc


class BlobReader:
    """Decrypts byte ranges of a complete file. One thread at a time."""

    def __init__(self, path: Path, blob_id: str, key: bytes, size: int) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._aead = AESGCM(key)
        self._blob_id = blob_id
        self.size = size
        # read_into's buffers, made on first use: ciphertext, and one partial record.
        self._raw = bytearray()
        self._part: bytearray | None = None

    def read(self, start: int, end: int) -> list[bytes]:
        """Plaintext bytes [start, end), one piece per chunk (no joining copies)."""
        if not 0 <= start <= end <= self.size:
            raise ValueError("range outside the file")
        pieces = []
        for index in range(start // CHUNK, (end + CHUNK - 1) // CHUNK):
            base = index * CHUNK
            plain = _read_record(self._fd, self._aead, self._blob_id, index,
                                 min(CHUNK, self.size - base))
            low, high = max(start - base, 0), min(end - base, len(plain))
            pieces.append(plain if (low, high) == (0, len(plain)) else plain[low:high])
        return pieces

    def read_into(self, start: int, end: int, out: memoryview) -> None:
        """Plaintext bytes [start, end) into `out` (exactly that long), for a sender that
        reuses its buffers: the records are read with one ``preadv`` into a reused
        ciphertext buffer and whole records decrypt straight into `out`. When a record's
        tag does not check, CorruptBlob is raised and `out` must not be used."""
        if not 0 <= start <= end <= self.size or len(out) != end - start:
            raise ValueError("range outside the file, or a buffer of another length")
        if start == end:
            return
        first, last = start // CHUNK, (end - 1) // CHUNK
        stored = last * RECORD + OVERHEAD + min(CHUNK, self.size - last * CHUNK) \
            - first * RECORD
        if len(self._raw) < stored:
            self._raw = bytearray(stored)
        raw = memoryview(self._raw)[:stored]
        if os.preadv(self._fd, [raw], first * RECORD) != stored:
            raise CorruptBlob(f"records {first}-{last} of {self._blob_id} are cut short")
        filled = 0
        for index in range(first, last + 1):
            base = index * CHUNK
            length = min(CHUNK, self.size - base)
            record = raw[(index - first) * RECORD:(index - first) * RECORD + length + OVERHEAD]
            low, high = max(start - base, 0), min(end - base, length)
            if (low, high) == (0, length):
                self._decrypt_into(index, record, out[filled:filled + length])
            else:  # the range starts or ends inside this record: decrypt all of it apart
                if self._part is None:
                    self._part = bytearray(CHUNK)
                part = memoryview(self._part)[:length]
                self._decrypt_into(index, record, part)
                out[filled:filled + high - low] = part[low:high]
                part[:] = bytes(length)  # no plaintext stays behind in the reader
            filled += high - low

    def _decrypt_into(self, index: int, record: memoryview, out: memoryview) -> None:
        try:
            self._aead.decrypt_into(record[:NONCE_BYTES], record[NONCE_BYTES:],
                                    _record_aad(self._blob_id, index), out)
        except InvalidTag as exc:
            raise CorruptBlob(f"record {index} of {self._blob_id} does not decrypt") from exc

    def close(self) -> None:
        os.close(self._fd)
