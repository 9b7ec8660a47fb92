"""File transfer limits: size, type judged by content, session quota, free disk,
and hostile file names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tusclient.exceptions import TusCommunicationError

from broker.clock import FakeClock
from broker.transfer.names import content_disposition, display_name
from web.state import get_broker

from .transfer_support import (
    SEED_004_TYPES,
    TUS,
    Factory,
    MiB,
    _bearer,
    _create,
    _download,
    _events,
    _files,
    _patch,
    _session,
    _stored,
    _tech,
    _upload,
)
from .transfer_support import make_client as make_client  # noqa: F401 - a fixture

# -- limits --------------------------------------------------------------------------


async def test_oversize_is_refused_before_any_data(make_client: Factory) -> None:
    client = await make_client(transfer_max_bytes=20_000_000)
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    options = await client.options(_files(session_id))
    assert options.headers["Tus-Max-Size"] == "20000000"
    refused = await _create(client, session_id, token, 20_000_001)
    assert refused.status == 413
    body = await refused.json()
    assert body["error"] == "file_too_large" and "20 MB" in body["message"]
    assert refused.headers["Tus-Resumable"] == "1.0.0"
    assert (await _create(client, session_id, token, 20_000_000)).status == 201


async def test_body_beyond_the_upload_length_is_refused(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    path = (await _create(client, session_id, token, 10)).headers["Location"]
    response = await _patch(client, path, token, 0, b"x" * 11)
    assert response.status == 413 and (await response.json())["error"] == "beyond_upload_length"
    head = await client.head(path, headers={**TUS, **_bearer(token)})
    assert head.headers["Upload-Offset"] == "0"


@pytest.mark.parametrize("name, content, code", [
    ("invoice.pdf", b"MZ\x90\x00" + os.urandom(2000), "type_mismatch"),       # a program
    ("photo.jpg", b"%PDF-1.7\n" + os.urandom(2000), "type_mismatch"),         # a PDF
    ("sheet.xlsx", b"\x7fELF" + os.urandom(2000), "type_mismatch"),
    ("tiny.pdf", b"MZ", "type_mismatch"),                                     # under 512 bytes
])
async def test_disallowed_content_renamed_to_an_allowed_extension(
        make_client: Factory, name: str, content: bytes, code: str) -> None:
    client = await make_client(transfer_allowed_types=SEED_004_TYPES)
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    with pytest.raises(TusCommunicationError) as refused:
        await _upload(client, session_id, token, content, name)
    assert refused.value.status_code == 415
    assert code.encode() in refused.value.response_content
    assert _stored(client) == []  # the partial data is gone
    (upload,) = (await (await client.get(_files(session_id), headers=tech.auth)).json())["files"]
    assert upload["state"] == "rejected" and upload["reason"] == code


async def test_allowed_types_by_extension_and_content(make_client: Factory) -> None:
    client = await make_client(transfer_allowed_types=SEED_004_TYPES)
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    refused = await _create(client, session_id, token, 100, filename="setup.exe")
    assert refused.status == 415 and (await refused.json())["error"] == "type_not_allowed"
    assert "PDF" in (await refused.json())["message"]
    samples = {
        "report.PDF": (b"%PDF-1.4\n" + os.urandom(4000), "application/pdf"),
        "letter.docx": (b"PK\x03\x04" + os.urandom(4000),
                        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        "old.xls": (bytes.fromhex("d0cf11e0a1b11ae1") + os.urandom(4000),
                    "application/vnd.ms-excel"),
        "photo.jpeg": (b"\xff\xd8\xff\xe0" + os.urandom(4000), "image/jpeg"),
    }
    for name, (content, mime) in samples.items():
        path = await _upload(client, session_id, token, content, name)
        response = await _download(client, path, tech.token)
        assert response.status == 200, name
        assert response.headers["Content-Type"] == mime
        assert await response.read() == content
    offered = await _events(client, tech, session_id, "file.offered")
    assert [e["name"] for e in offered] == list(samples)


async def test_session_quota(make_client: Factory) -> None:
    client = await make_client(transfer_session_quota_bytes=5000)
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    first = await _create(client, session_id, token, 3000)
    assert first.status == 201
    second = await _create(client, session_id, token, 3000)
    assert second.status == 413 and (await second.json())["error"] == "quota_exceeded"
    # A cancelled upload frees its share.
    cancel = await client.delete(first.headers["Location"], headers={**TUS, **_bearer(token)})
    assert cancel.status == 204
    assert (await _create(client, session_id, token, 3000)).status == 201
    other_session, other_token = await _session(client, tech)
    assert (await _create(client, other_session, other_token, 3000)).status == 201


async def test_free_disk_floor(make_client: Factory, tmp_path: Path) -> None:
    import shutil

    free = shutil.disk_usage(tmp_path).free
    client = await make_client(transfer_min_free_bytes=free + 10**12)
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    refused = await _create(client, session_id, token, 10)
    assert refused.status == 507 and (await refused.json())["error"] == "insufficient_storage"
    await client.close()
    # Uploads still running count against the floor with what they have yet to send.
    free = shutil.disk_usage(tmp_path).free
    client = await make_client(transfer_min_free_bytes=max(0, free - 300 * MiB))
    assert (await _create(client, session_id, token, 200 * MiB)).status == 201
    refused = await _create(client, session_id, token, 200 * MiB)
    assert refused.status == 507


async def test_creating_uploads_is_limited_per_participant(make_client: Factory,
                                                           clock: FakeClock) -> None:
    """A burst of creations beyond the allowance is refused with 429 and Retry-After,
    leaves nothing behind (no row, no file, no event in the chat), and works again once
    the wait is over. (An end user once put 100 file events into the chat in a second.)"""
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    burst = get_broker(client.app).settings.transfer_upload_burst
    for _ in range(burst):
        assert (await _create(client, session_id, token, 0)).status == 201
    stored = _stored(client)
    for _ in range(3):
        refused = await _create(client, session_id, token, 0)
        assert refused.status == 429 and (await refused.json())["error"] == "rate_limited"
        assert "file" in (await refused.json())["message"]
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 60
    listing = await client.get(_files(session_id), headers=tech.auth)
    assert len((await listing.json())["files"]) == burst
    assert len(await _events(client, tech, session_id, "file.offered")) == burst
    assert _stored(client) == stored
    # Per participant: the technician in the same session has an allowance of their own.
    assert (await _create(client, session_id, tech.token, 0)).status == 201
    clock.advance(wait)
    assert (await _create(client, session_id, token, 0)).status == 201


# -- names ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw, shown", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\Windows\\system.ini", "system.ini"),
    ("/absolute/path/report.txt", "report.txt"),
    ("report\r\nSet-Cookie: owned=1.txt", "report Set-Cookie_ owned=1.txt"),
    ('quote".txt', "quote_.txt"),
    ("invoice\u202efdp.exe", "invoicefdp.exe"),
    ("CON.txt", "_CON.txt"),
    ("..", "file"),
    ("Grüße, Jürgen.txt", "Grüße, Jürgen.txt"),
])
def test_display_names(raw: str, shown: str) -> None:
    assert display_name(raw) == shown
    header = content_disposition(raw)
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="') and "filename*=UTF-8''" in header


async def test_hostile_names_are_safe_on_disk_and_in_headers(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    name = "../../../x\r\nSet-Cookie: owned=1\r\n\r\n<script>.txt"
    path = await _upload(client, session_id, token, b"hello", name)
    response = await _download(client, path, tech.token)
    assert response.status == 200
    assert "Set-Cookie" not in response.headers and "owned" not in response.cookies
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and ".." not in disposition
    assert 'filename="x Set-Cookie_ owned=1 _script_.txt"' in disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Type"] == "text/plain"
    (offered,) = await _events(client, tech, session_id, "file.offered")
    assert offered["name"] == "x Set-Cookie_ owned=1 _script_.txt"
    root = get_broker(client.app).settings.transfer_path
    assert all(p.parent == root for p in _stored(client))
    assert not any("script" in p.name or "owned" in p.name for p in _stored(client))
