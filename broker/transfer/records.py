"""The encrypted record format of files at rest: AES-256-GCM in fixed-size chunks.

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

The directory is broker/transfer/store.py, the writing broker/transfer/blobwriter.py and
the reading broker/transfer/blobreader.py.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..hashing import load_or_create_secret

CHUNK = 256 * 1024
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = NONCE_BYTES + TAG_BYTES
RECORD = CHUNK + OVERHEAD
TAIL_MAGIC = b"SBT1"


MASTER_KEY_FILE = "transfer-master-key"


def load_master_key(transfer_master_key: str, data_dir: Path) -> bytes:
    """The master key from the setting (base64), or one generated in the data directory."""
    if transfer_master_key:
        return base64.b64decode(transfer_master_key)
    return load_or_create_secret(data_dir, MASTER_KEY_FILE)


class CorruptBlob(Exception):
    """Stored data that does not decrypt: damaged on disk, or not written by this broker."""


def record_aad(blob_id: str, index: int) -> bytes:
    return b"sb-file|" + blob_id.encode() + b"|" + index.to_bytes(8, "big")


def tail_aad(blob_id: str, offset: int) -> bytes:
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


def stored_size(size: int) -> int:
    """How many bytes the records of a complete file of `size` plaintext bytes take."""
    full, rest = divmod(size, CHUNK)
    return full * RECORD + (rest + OVERHEAD if rest else 0)


def read_record(fd: int, aead: AESGCM, blob_id: str, index: int, length: int) -> bytes:
    # Sliced as a memoryview: slicing bytes would copy the whole record, and on a fast
    # download those copies (fresh memory each time) cost more than the decryption.
    raw = memoryview(os.pread(fd, length + OVERHEAD, index * RECORD))
    if len(raw) != length + OVERHEAD:
        raise CorruptBlob(f"record {index} of {blob_id} is cut short")
    try:
        return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], record_aad(blob_id, index))
    except InvalidTag as exc:
        raise CorruptBlob(f"record {index} of {blob_id} does not decrypt") from exc
