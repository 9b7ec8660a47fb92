"""Secrets the broker keeps: the server secret for keyed hashes, and password hashes.

Support keys, participant tokens and API tokens are looked up only by HMAC-SHA256 under
a server secret that is generated on first start and kept in the data directory. An
attacker with a copy of the database alone cannot test guesses offline. While a key is
live it is also kept sealed (AES-256-GCM, another data-directory key), so that it can be
sent by SMS or email later; the sealed copy is erased when the key is used, revoked or
its session ends.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

SECRET_FILE = "server-secret"  # noqa: S105 - a file name, not a secret


def load_or_create_secret(data_dir: Path, name: str = SECRET_FILE, size: int = 32) -> bytes:
    """Read a secret from the data directory, creating it (mode 0600) on first start."""
    path = data_dir / name
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # see broker/datadir.py
    value = secrets.token_bytes(size)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, value)
    finally:
        os.close(fd)
    return value


class Hasher:
    """Keyed hashes of bearer secrets, so the database never holds a usable credential."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the server secret must be at least 32 bytes")
        self._secret = secret

    def hash(self, purpose: str, value: str) -> str:
        message = f"{purpose}\x00{value}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


class Sealer:
    """AES-256-GCM for the few secrets the broker must read back (a live key, to send it)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a sealing key has 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        raw = base64.b64decode(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()


# scrypt with 16 MiB of memory per guess (n=2**14, r=8): memory-hard, ~50 ms here.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P).derive(
        password.encode())
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encoded[0]}${encoded[1]}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        kdf = Scrypt(salt=base64.b64decode(salt), length=32, n=int(n), r=int(r), p=int(p))
        kdf.verify(password.encode(), base64.b64decode(digest))
    except (ValueError, InvalidKey):
        return False
    return True
