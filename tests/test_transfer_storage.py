"""What lies on the disk (encrypted, in the documented layout), expiry and retention
with the injected clock, and the transfer settings."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.clock import FakeClock
from broker.errors import InvalidInput
from broker.settings import Settings
from broker.transfer.records import CHUNK, RECORD, KeyRing, load_master_key
from web.state import get_broker

from .transfer_support import (
    TUS,
    Factory,
    _bearer,
    _create,
    _download,
    _events,
    _patch,
    _session,
    _stored,
    _tech,
    _upload,
)
from .transfer_support import make_client as make_client  # noqa: F401 - a fixture


async def test_stored_bytes_are_encrypted(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    marker = b"CONFIDENTIAL-PAYROLL-2026;"
    data = marker * 40_000 + b"tail" * 1000  # ~1 MiB, a partial last chunk
    path = (await _create(client, session_id, token, len(data))).headers["Location"]
    await _patch(client, path, token, 0, data[:300_000])  # a partial chunk in the tail file
    stored = b"".join(p.read_bytes() for p in _stored(client))
    assert stored and marker not in stored and b"PAYROLL" not in stored
    await _patch(client, path, token, 300_000, data[300_000:])
    stored = b"".join(p.read_bytes() for p in _stored(client))
    assert len(_stored(client)) == 1 and marker not in stored and b"tail" * 4 not in stored
    assert len(stored) > len(data)  # nonces and tags
    assert await (await _download(client, path, token)).read() == data



async def test_stored_records_keep_the_documented_layout(make_client: Factory) -> None:
    """Record i at i x RECORD: nonce, AES-256-GCM ciphertext and tag, associated data
    "sb-file|<id>|<i>". Files stored by earlier versions have this layout and still
    download, so it must not change without a version marker."""
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(2 * CHUNK + 1000)
    path = await _upload(client, session_id, token, data)
    broker = get_broker(client.app)
    upload = await broker.transfers.get(session_id, path.rstrip("/").rsplit("/", 1)[1])
    master = load_master_key(broker.settings.transfer_master_key, broker.settings.data_dir)
    aead = AESGCM(KeyRing(master).unwrap(upload.blob_id, upload.wrapped_key))
    stored = (broker.settings.transfer_path / upload.blob_id).read_bytes()
    assert len(stored) == 2 * RECORD + 1000 + 12 + 16
    plain = b""
    for index in range(3):
        record = stored[index * RECORD:(index + 1) * RECORD]
        aad = b"sb-file|" + upload.blob_id.encode() + b"|" + index.to_bytes(8, "big")
        plain += aead.decrypt(record[:12], record[12:], aad)
    assert plain == data


# -- time: expiry and retention ----------------------------------------------------------


async def test_unfinished_upload_expires(make_client: Factory, clock: FakeClock) -> None:
    client = await make_client(transfer_upload_expiry_seconds=3600)
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    path = (await _create(client, session_id, token, 1000)).headers["Location"]
    await _patch(client, path, token, 0, b"x" * 10)
    broker = get_broker(client.app)
    clock.advance(3599)
    await broker.transfers.sweep()
    assert (await client.head(path, headers={**TUS, **_bearer(token)})).status == 200
    clock.advance(3599)  # the PATCH moved the expiry on; now it has passed
    await broker.transfers.sweep()
    assert (await client.head(path, headers={**TUS, **_bearer(token)})).status == 410
    assert _stored(client) == []
    (cancelled,) = await _events(client, tech, session_id, "file.cancelled")
    assert cancelled["reason"] == "expired" and cancelled["author"] is None


async def test_retention_removes_files_of_ended_sessions(make_client: Factory,
                                                         clock: FakeClock) -> None:
    client = await make_client(transfer_retention_seconds=86400)
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    kept_session, kept_token = await _session(client, tech)
    path = await _upload(client, session_id, token, b"invoice")
    kept = await _upload(client, kept_session, kept_token, b"still running")
    unfinished = (await _create(client, session_id, token, 100)).headers["Location"]
    assert (await client.post(f"/api/v1/sessions/{session_id}/end", headers=tech.auth)
            ).status == 200
    broker = get_broker(client.app)
    await broker.transfers.sweep()  # unfinished uploads of an ended session go at once
    assert (await client.head(unfinished, headers={**TUS, **_bearer(token)})).status == 410
    clock.advance(86399)
    await broker.transfers.sweep()
    assert (await _download(client, path, token)).status == 200  # still within retention
    clock.advance(2)
    await broker.transfers.sweep()
    assert (await _download(client, path, token)).status == 410
    assert (await _download(client, kept, kept_token)).status == 200
    assert len(_stored(client)) == 1
    # The transcript keeps the record: name, size, hash, sender, time.
    (offered,) = await _events(client, tech, session_id, "file.offered")
    assert offered["name"] == "data.bin" and offered["size"] == 7
    assert offered["sha256"] == hashlib.sha256(b"invoice").hexdigest()
    assert offered["author"]["role"] == "end_user" and offered["at"]
    (removed,) = await _events(client, tech, session_id, "file.removed")
    assert removed["reason"] == "retention" and removed["author"] is None


# -- settings ------------------------------------------------------------------------


def test_transfer_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        Settings(transfer_master_key="not base64!")
    with pytest.raises(InvalidInput):
        Settings(transfer_master_key=base64.b64encode(b"short").decode())
    with pytest.raises(InvalidInput):
        Settings(transfer_allowed_types="pdf,../exe")
    with pytest.raises(InvalidInput):
        Settings(transfer_max_bytes=-1)
    settings = Settings.load(environ={"BROKER_TRANSFER_MAX_BYTES": "0",
                                      "BROKER_TRANSFER_DIR": str(tmp_path / "f")})
    assert settings.transfer_max_bytes == 0 and settings.transfer_path == tmp_path / "f"


async def test_master_key_from_settings(make_client: Factory, tmp_path: Path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    client = await make_client(transfer_master_key=key, transfer_dir=str(tmp_path / "vault"))
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    path = await _upload(client, session_id, token, b"hello vault")
    assert [p.parent for p in _stored(client)] == [tmp_path / "vault"]
    assert not (tmp_path / "data" / "transfer-master-key").exists()
    assert await (await _download(client, path, token)).read() == b"hello vault"


async def test_files_no_upload_owns_are_removed_at_start(make_client: Factory,
                                                         tmp_path: Path) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    path = await _upload(client, session_id, token, b"keep me")
    root = get_broker(client.app).settings.transfer_path
    await client.close()
    old, fresh = root / ("o" * 32), root / ("f" * 32 + ".tail")
    for stray in (old, fresh):
        stray.write_bytes(b"left behind by a crash")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    restarted = await make_client()
    assert not old.exists() and fresh.exists()  # a fresh one may be another node's
    assert await (await _download(restarted, path, token)).read() == b"keep me"
