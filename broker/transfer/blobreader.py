"""Reading byte ranges of a complete file at rest, in the record format of
broker/transfer/records.py. Blocking file I/O, run in the transfer service's worker
threads.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .records import CHUNK, NONCE_BYTES, OVERHEAD, RECORD, CorruptBlob, read_record, record_aad


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
            plain = read_record(self._fd, self._aead, self._blob_id, index,
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
                                    record_aad(self._blob_id, index), out)
        except InvalidTag as exc:
            raise CorruptBlob(f"record {index} of {self._blob_id} does not decrypt") from exc

    def close(self) -> None:
        os.close(self._fd)
