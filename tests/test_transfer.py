"""File transfer: tus uploads with the real tuspy client against a loopback broker, cut
connections and a broker restart, checksums, limits, names, who may download, ranges,
expiry and retention with the injected clock, and what lies on the disk."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import io
import logging
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError
from yarl import URL

from broker.clock import FakeClock
from broker.errors import InvalidInput
from broker.settings import Settings
from broker.transfer.names import content_disposition, display_name
from broker.transfer.service import BATCH_BYTES, RECEIVE_THREADS, SEND_BYTES, SEND_THREADS
from broker.transfer.store import CHUNK, RECORD, KeyRing, load_master_key
from web import create_app
from web.direct import LEND_MIN_BYTES
from web.state import get_broker

from .conftest import PASSWORD, Tech, csrf_from, join, login, open_socket, start_session

Factory = Callable[..., Awaitable[TestClient]]
TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = "application/offset+octet-stream"
MiB = 1024 * 1024
SEED_004_TYPES = "pdf,zip,jpg,jpeg,docx,xlsx,xls"


@pytest.fixture
def make_client(aiohttp_client: Any, tmp_path: Path, clock: FakeClock) -> Factory:
    """A broker on a loopback port; every call with the same data directory."""

    async def make(**overrides: Any) -> TestClient:
        values: dict[str, Any] = {"data_dir": tmp_path / "data", "transfer_min_free_bytes": 0}
        values.update(overrides)
        return await aiohttp_client(  # type: ignore[no-any-return]
            create_app(Settings(**values), clock=clock))

    return make


async def _tech(client: TestClient, email: str = "alice@example.com", *,
                admin: bool = False) -> Tech:
    broker = get_broker(client.app)
    technician = await broker.technicians.add(email, email.split("@")[0].title(), PASSWORD,
                                              is_admin=admin)
    return Tech(technician, await broker.technicians.create_token(technician.id))


async def _session(client: TestClient, tech: Tech) -> tuple[str, str]:
    """A started session: its id and the end user's participant token."""
    joined = await join(client, (await start_session(client, tech))["key"])
    return joined["session_id"], joined["participant_token"]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _files(session_id: str) -> str:
    return f"/api/v1/sessions/{session_id}/files/"


def _tus_upload(endpoint: str, token: str, data: bytes, name: str, *,
                url: str | None = None, **options: Any) -> str:
    """Upload with tuspy's synchronous client (run it in a thread); returns the upload URL."""
    metadata = {"filename": name, **options.pop("metadata", {})}
    client = TusClient(endpoint, headers=_bearer(token))
    uploader = client.uploader(file_stream=io.BytesIO(data), url=url, metadata=metadata,
                               **options)
    uploader.upload()
    return str(uploader.url)


async def _upload(client: TestClient, session_id: str, token: str, data: bytes,
                  name: str = "data.bin", **options: Any) -> str:
    """tuspy against the broker; returns the upload's path."""
    url = await asyncio.to_thread(_tus_upload, str(client.make_url(_files(session_id))), token,
                                  data, name, **options)
    return URL(url).path


async def _download(client: TestClient, path: str, token: str, **headers: str) -> Any:
    return await client.get(path, headers={**_bearer(token), **headers})


async def _events(client: TestClient, tech: Tech, session_id: str,
                  kind: str | None = None) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/sessions/{session_id}/events", headers=tech.auth)
    events = (await response.json())["events"]
    return [e for e in events if kind is None or e["type"] == kind]


def _stored(client: TestClient) -> list[Path]:
    root = get_broker(client.app).settings.transfer_path
    return sorted(p for p in root.iterdir()) if root.exists() else []


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


async def _create(client: TestClient, session_id: str, token: str, length: int,
                  **metadata: str) -> Any:
    return await client.post(_files(session_id), headers={
        **TUS, **_bearer(token), "Upload-Length": str(length),
        "Upload-Metadata": _metadata(**{"filename": "f.bin", **metadata})})


async def _patch(client: TestClient, path: str, token: str, offset: int, body: Any,
                 **headers: str) -> Any:
    return await client.patch(path, data=body, headers={
        **TUS, **_bearer(token), "Upload-Offset": str(offset),
        "Content-Type": OFFSET_STREAM, **headers})


class CuttingProxy:
    """A TCP proxy to the broker that drops the connection once `limit` bytes went up:
    the network failing in the middle of an upload."""

    def __init__(self, target_port: int, limit: int) -> None:
        self.target_port = target_port
        self.limit = limit
        self.forwarded = 0
        self.cut = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def down() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()

        downstream = asyncio.create_task(down())
        try:
            while data := await reader.read(65536):
                room = self.limit - self.forwarded
                up_writer.write(data[:room])
                await up_writer.drain()
                self.forwarded += min(room, len(data))
                if self.forwarded >= self.limit:
                    self.cut.set()
                    break
        finally:
            await asyncio.sleep(0.05)  # let what was forwarded reach the broker first
            writer.transport.abort()
            up_writer.transport.abort()
            downstream.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await downstream


# -- resumable uploads -----------------------------------------------------------------


async def test_cut_connection_resumes_with_identical_bytes(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(5 * MiB + 333)
    assert client.port is not None
    async with CuttingProxy(client.port, limit=2 * MiB) as proxy:
        endpoint = f"http://127.0.0.1:{proxy.port}{_files(session_id)}"
        with pytest.raises(TusCommunicationError):
            await asyncio.to_thread(_tus_upload, endpoint, token, data, "big.bin")
    (upload,) = (await (await client.get(_files(session_id), headers=_bearer(token))).json()
                 )["files"]
    path = upload["url"]
    head = await client.head(path, headers={**TUS, **_bearer(token)})
    offset = int(head.headers["Upload-Offset"])
    assert 0 < offset < len(data), offset
    assert head.headers["Cache-Control"] == "no-store" and "Upload-Expires" in head.headers
    # tuspy resumes from the offset the broker reports.
    resumed = await asyncio.to_thread(
        _tus_upload, str(client.make_url(_files(session_id))), token, data, "big.bin",
        url=str(client.make_url(path)))
    assert URL(resumed).path == path
    response = await _download(client, path, tech.token)
    assert response.status == 200
    assert await response.read() == data
    (offered,) = await _events(client, tech, session_id, "file.offered")
    assert offered["sha256"] == hashlib.sha256(data).hexdigest()
    assert offered["author"]["role"] == "end_user" and offered["size"] == len(data)


async def test_upload_resumes_after_a_broker_restart(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(3 * MiB + 1000)
    assert client.port is not None
    async with CuttingProxy(client.port, limit=MiB + 300 * 1024) as proxy:
        endpoint = f"http://127.0.0.1:{proxy.port}{_files(session_id)}"
        with pytest.raises(TusCommunicationError):
            await asyncio.to_thread(_tus_upload, endpoint, token, data, "restart.bin")
    path = (await (await client.get(_files(session_id), headers=_bearer(token))).json()
            )["files"][0]["url"]
    before = int((await client.head(path, headers={**TUS, **_bearer(token)})
                  ).headers["Upload-Offset"])
    assert before > 0
    await client.close()

    restarted = await make_client()
    head = await restarted.head(path, headers={**TUS, **_bearer(token)})
    assert head.status == 200 and int(head.headers["Upload-Offset"]) == before
    await asyncio.to_thread(
        _tus_upload, str(restarted.make_url(_files(session_id))), token, data, "restart.bin",
        url=str(restarted.make_url(path)))
    assert await (await _download(restarted, path, tech.token)).read() == data
    (offered,) = await _events(restarted, tech, session_id, "file.offered")
    # The running SHA-256 was rebuilt from the encrypted data after the restart.
    assert offered["sha256"] == hashlib.sha256(data).hexdigest()


async def test_a_stalled_request_is_taken_over(make_client: Factory) -> None:
    """The client lost its connection, but the broker has not noticed yet: the resume
    stops the old request, which keeps what it received."""
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(2 * MiB)
    path = (await _create(client, session_id, token, len(data))).headers["Location"]
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write((f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
                  f"Authorization: Bearer {token}\r\nUpload-Offset: 0\r\n"
                  f"Content-Type: application/offset+octet-stream\r\n"
                  f"Content-Length: {len(data)}\r\n\r\n").encode() + data[:MiB + 5])
    await writer.drain()
    await asyncio.sleep(0.3)  # the broker reads what came, then waits for more
    head = await client.head(path, headers={**TUS, **_bearer(token)})
    assert head.status == 200 and int(head.headers["Upload-Offset"]) == MiB + 5
    rest = await _patch(client, path, token, MiB + 5, data[MiB + 5:])
    assert rest.status == 204 and rest.headers["Upload-Offset"] == str(len(data))
    writer.close()
    assert await (await _download(client, path, token)).read() == data


# -- integrity -----------------------------------------------------------------------


async def test_wrong_declared_checksum_is_damaged_and_not_offered(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(600 * 1024)
    wrong = "sha256 " + _sha256_b64(data + b"x")
    with pytest.raises(TusCommunicationError) as failed:
        await _upload(client, session_id, token, data, metadata={"checksum": wrong})
    assert failed.value.status_code == 460
    assert b"damaged_in_transfer" in failed.value.response_content
    assert b"damaged in transfer" in failed.value.response_content
    assert not await _events(client, tech, session_id, "file.offered")
    (damaged,) = await _events(client, tech, session_id, "file.damaged")
    assert damaged["sha256"] == hashlib.sha256(data).hexdigest()
    (upload,) = (await (await client.get(_files(session_id), headers=tech.auth)).json())["files"]
    assert upload["state"] == "damaged"
    assert (await _download(client, upload["url"], tech.token)).status == 410
    assert _stored(client) == []
    # The right checksum goes through.
    right = "sha256 " + _sha256_b64(data)
    path = await _upload(client, session_id, token, data, metadata={"checksum": right})
    assert await (await _download(client, path, tech.token)).read() == data


async def test_request_checksums_sha1_and_sha256(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(300 * 1024)
    # tuspy sends sha1 of every request body.
    path = await _upload(client, session_id, token, data, chunk_size=100 * 1024,
                         upload_checksum=True)
    assert await (await _download(client, path, token)).read() == data
    path = (await _create(client, session_id, token, 2000)).headers["Location"]
    bad = await _patch(client, path, token, 0, b"a" * 1000, **{
        "Upload-Checksum": "sha256 " + _sha256_b64(b"b" * 1000)})
    assert bad.status == 460 and (await bad.json())["error"] == "checksum_mismatch"
    head = await client.head(path, headers={**TUS, **_bearer(token)})
    assert head.headers["Upload-Offset"] == "0"  # the refused data was not stored
    good = await _patch(client, path, token, 0, b"a" * 1000, **{
        "Upload-Checksum": "sha256 " + _sha256_b64(b"a" * 1000)})
    assert good.status == 204 and good.headers["Upload-Offset"] == "1000"
    odd = await _patch(client, path, token, 1000, b"a" * 1000, **{"Upload-Checksum": "md5 AA=="})
    assert odd.status == 400 and (await odd.json())["error"] == "unsupported_checksum"


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


# -- who may see files -----------------------------------------------------------------


async def test_only_the_sessions_participants_reach_its_files(make_client: Factory) -> None:
    client = await make_client()
    alice = await _tech(client)
    bob = await _tech(client, "bob@example.com")
    admin = await _tech(client, "root@example.com", admin=True)
    session_id, token = await _session(client, alice)
    other_session, other_token = await _session(client, bob)
    path = await _upload(client, session_id, token, b"secret report")
    assert (await _download(client, path, token)).status == 200
    assert (await _download(client, path, alice.token)).status == 200
    assert (await client.get(path)).status == 401                      # no credential
    assert (await _download(client, path, "sbp_" + "x" * 43)).status == 401
    assert (await _download(client, path, other_token)).status == 403   # another session's user
    assert (await _download(client, path, bob.token)).status == 403     # another technician
    assert (await _download(client, path, admin.token)).status == 403   # not a participant
    # The link under the other session's path does not lead to it either.
    moved = path.replace(session_id, other_session)
    assert (await _download(client, moved, other_token)).status == 404
    assert (await client.get(_files(session_id), headers=_bearer(other_token))).status == 403
    assert (await _create(client, session_id, other_token, 10)).status == 403
    # Only the sender resumes or cancels an upload.
    pending = (await _create(client, session_id, token, 10)).headers["Location"]
    assert (await client.head(pending, headers={**TUS, **alice.auth})).status == 403
    assert (await _patch(client, pending, alice.token, 0, b"x")).status == 403
    assert (await client.delete(pending, headers={**TUS, **alice.auth})).status == 403


async def test_end_user_download_link_works_by_cookie_only_in_their_browser(
        make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    started = await start_session(client, tech)
    form = await client.get("/join")
    joined = await client.post("/join", data={"key": started["key"],
                                              "_csrf": csrf_from(await form.text())},
                               allow_redirects=False)
    assert joined.status == 303
    session_id = started["session_id"]
    cookie = joined.cookies[f"sb_files_{session_id}"]
    assert cookie["path"] == f"/api/v1/sessions/{session_id}/files/" and cookie["httponly"]
    token = joined.cookies[f"sb_participant_{session_id}"].value
    path = await _upload(client, session_id, tech.token, b"from the technician",
                         "notes.txt")
    response = await client.get(path)  # the browser's cookie, no Authorization header
    assert response.status == 200 and await response.read() == b"from the technician"
    # The cookie is not enough to change anything.
    assert (await client.post(_files(session_id), headers={**TUS, "Upload-Length": "1"})
            ).status in (401, 403)
    client.session.cookie_jar.clear()
    assert (await client.get(path)).status == 401  # a copied link, another browser
    assert (await _download(client, path, token)).status == 200


async def test_technician_cookie_login_needs_csrf_to_upload(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    csrf = await login(client, "alice@example.com")
    headers = {**TUS, "Upload-Length": "5", "Upload-Metadata": _metadata(filename="a.txt")}
    assert (await client.post(_files(session_id), headers=headers)).status == 403
    created = await client.post(_files(session_id), headers={**headers, "X-CSRF-Token": csrf})
    assert created.status == 201
    path = created.headers["Location"]
    done = await client.patch(path, data=b"hello", headers={
        **TUS, "X-CSRF-Token": csrf, "Upload-Offset": "0",
        "Content-Type": OFFSET_STREAM})
    assert done.status == 204
    assert await (await client.get(path)).read() == b"hello"
    assert await (await _download(client, path, token)).read() == b"hello"


# -- downloads -----------------------------------------------------------------------


async def test_range_downloads(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(700 * 1024 + 17)  # three chunks and a bit
    path = await _upload(client, session_id, token, data)
    size = len(data)
    for header, start, end in [("bytes=0-0", 0, 1), ("bytes=100-199", 100, 200),
                               ("bytes=262140-262150", 262140, 262151),
                               (f"bytes={size - 10}-", size - 10, size),
                               ("bytes=-5", size - 5, size),
                               (f"bytes=500000-{size + 1000}", 500000, size)]:
        response = await _download(client, path, tech.token, Range=header)
        assert response.status == 206, header
        assert response.headers["Content-Range"] == f"bytes {start}-{end - 1}/{size}"
        assert await response.read() == data[start:end], header
    beyond = await _download(client, path, tech.token, Range=f"bytes={size}-")
    assert beyond.status == 416 and beyond.headers["Content-Range"] == f"bytes */{size}"
    whole = await _download(client, path, tech.token, Range="bytes=0-9",
                            **{"If-Range": '"not-the-etag"'})
    assert whole.status == 200 and await whole.read() == data
    head = await client.head(path, headers=tech.auth)  # no Tus-Resumable: the download's
    assert head.status == 200 and head.headers["Content-Length"] == str(size)
    assert head.headers["Accept-Ranges"] == "bytes"
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert head.headers["Repr-Digest"] == f"sha-256=:{digest}:"



async def test_downloads_across_batches(make_client: Factory) -> None:
    """Downloads are decrypted batch by batch in a worker thread; the bytes come out whole
    and in order, for the whole file and for ranges across batch boundaries."""
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(BATCH_BYTES * 3 + 123_457)
    path = await _upload(client, session_id, token, data)
    assert await (await _download(client, path, tech.token)).read() == data
    size = len(data)
    for start, end in [(BATCH_BYTES - 5, BATCH_BYTES + 5),
                       (BATCH_BYTES + 1000, BATCH_BYTES * 2 + 7),
                       (CHUNK * 3 - 1, size)]:
        response = await _download(client, path, tech.token, Range=f"bytes={start}-{end - 1}")
        assert response.status == 206
        assert await response.read() == data[start:end], (start, end)


# -- downloads sent from a thread straight to the socket -----------------------------------


class RawConnection:
    """One HTTP/1.1 connection driven by hand: one request at a time, each response read
    exactly to its Content-Length, so keep-alive and slow reading are the test's to decide.
    A small receive buffer makes a client that does not read stall the broker's sending
    soon."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, client: TestClient, *, receive_buffer: int = 64 * 1024
                   ) -> RawConnection:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(
                sock, (client.server.host, client.server.port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=receive_buffer)
        except BaseException:
            sock.close()
            raise
        return cls(reader, writer)

    async def get(self, path: str, token: str, **headers: str) -> tuple[int, dict[str, str]]:
        """Send a GET; its status and headers (names in lower case)."""
        self.start("GET", path, token, **headers)
        return await self.response()

    def start(self, method: str, path: str, token: str, **headers: str) -> None:
        """Send a request's head; its body, if any, is the caller's to write."""
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1",
                 f"Authorization: Bearer {token}",
                 *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items())]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def start_patch(self, path: str, token: str, offset: int, length: int) -> None:
        self.start("PATCH", path, token, Tus_Resumable="1.0.0", Upload_Offset=str(offset),
                   Content_Type=OFFSET_STREAM, Content_Length=str(length))

    async def response(self) -> tuple[int, dict[str, str]]:
        """The next response's status and headers (names in lower case)."""
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = dict(line.split(": ", 1) for line in head[1:] if line)
        return int(head[0].split()[1]), {k.lower(): v for k, v in fields.items()}

    async def body(self, headers: dict[str, str]) -> bytes:
        return await self.reader.readexactly(int(headers["content-length"]))

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def _stored_file(client: TestClient, session_id: str, token: str, data: bytes) -> str:
    """A complete file from one PATCH (quicker than tuspy for big ones); its path."""
    path = (await _create(client, session_id, token, len(data))).headers["Location"]
    response = await client.patch(path, data=io.BytesIO(data), headers={
        **TUS, **_bearer(token), "Upload-Offset": "0",
        "Content-Type": OFFSET_STREAM})
    assert response.status == 204
    return str(path)


async def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


# Larger than what the kernel buffers between the broker and a RawConnection (a send
# buffer of at most 4 MiB, 128 KiB received): sending it stalls until the client reads.
STALLING = 16 * MiB + 12345


async def test_a_download_goes_out_from_a_thread_byte_identical(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(STALLING)
    path = await _stored_file(client, session_id, token, data)
    broker = get_broker(client.app)
    transfers = broker.transfers

    def sent() -> float:
        return broker.metrics.registry.get_sample_value(
            "broker_transfer_bytes_total", {"direction": "out"}) or 0.0

    conn = await RawConnection.open(client)
    try:
        status, headers = await conn.get(path, tech.token)
        assert status == 200 and int(headers["content-length"]) == len(data)
        await _until(lambda: transfers.sending == 1)  # waiting for the client, in a thread
        assert await conn.body(headers) == data
        await _until(lambda: transfers.sending == 0)  # counted once the kernel took it
        assert sent() == len(data)
        start, end = SEND_BYTES - 7, 3 * SEND_BYTES + CHUNK + 5  # across batches and records
        status, headers = await conn.get(path, tech.token, Range=f"bytes={start}-{end - 1}")
        assert status == 206 and headers["content-range"] == f"bytes {start}-{end - 1}/{len(data)}"
        assert await conn.body(headers) == data[start:end]
        status, headers = await conn.get(path, tech.token, Range="bytes=-1")
        assert status == 206 and await conn.body(headers) == data[-1:]
        await _until(lambda: transfers.sending == 0)
        assert sent() == len(data) + end - start + 1
    finally:
        await conn.close()


async def test_downloads_keep_the_connection_alive(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(3 * SEND_BYTES + 99)
    path = await _stored_file(client, session_id, token, data)
    conn = await RawConnection.open(client)
    try:
        for _ in range(2):  # the second request goes over the same connection
            status, headers = await conn.get(path, tech.token)
            assert status == 200 and headers.get("connection", "").lower() != "close"
            assert await conn.body(headers) == data
        listing = await conn.get(_files(session_id), tech.token)
        assert listing[0] == 200
    finally:
        await conn.close()


async def test_the_loop_answers_while_a_client_reads_slowly(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(STALLING)
    path = await _stored_file(client, session_id, token, data)
    transfers = get_broker(client.app).transfers
    chat = await open_socket(client, session_id, tech.token)
    conn = await RawConnection.open(client)
    try:
        status, headers = await conn.get(path, tech.token)
        assert status == 200
        received = await conn.reader.readexactly(SEND_BYTES)
        await _until(lambda: transfers.sending == 1)
        async with asyncio.timeout(2):  # the download is stalled; the broker is not
            listing = await client.get(_files(session_id), headers=tech.auth)
            assert listing.status == 200
            await chat.ws.send_json({"type": "chat.send", "id": "c1", "text": "still here?"})
            while (frame := await chat.next())["type"] != "event":
                pass
            assert frame["event"]["text"] == "still here?"
        while len(received) < len(data):  # then read slowly to the end
            received += await conn.reader.read(256 * 1024)
            await asyncio.sleep(0.001)
        assert received == data
    finally:
        await conn.close()
        await chat.close()


async def test_a_client_leaving_midway_frees_the_thread(
        make_client: Factory, caplog: pytest.LogCaptureFixture) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(STALLING)
    path = await _stored_file(client, session_id, token, data)
    transfers = get_broker(client.app).transfers
    for _ in range(SEND_THREADS + 1):  # more than there are threads: each one comes back
        conn = await RawConnection.open(client)
        status, headers = await conn.get(path, tech.token)
        assert status == 200
        await conn.reader.readexactly(100_000)
        await _until(lambda: transfers.sending == 1)
        conn.writer.transport.abort()  # unread data: the broker gets a reset
        await _until(lambda: transfers.sending == 0, seconds=2)
    assert await (await _download(client, path, tech.token)).read() == data
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_with_every_thread_busy_the_loop_sends(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(STALLING)
    path = await _stored_file(client, session_id, token, data)
    transfers = get_broker(client.app).transfers
    stalled = [await RawConnection.open(client) for _ in range(SEND_THREADS)]
    try:
        for conn in stalled:
            assert (await conn.get(path, tech.token))[0] == 200
        await _until(lambda: transfers.sending == SEND_THREADS)
        response = await _download(client, path, tech.token, Range="bytes=1000-")
        assert response.status == 206 and await response.read() == data[1000:]
        assert transfers.sending == SEND_THREADS
    finally:
        for conn in stalled:
            await conn.close()
    await _until(lambda: transfers.sending == 0)


def _tls_context(directory: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=1))
                   .not_valid_after(now + datetime.timedelta(hours=1))
                   .sign(key, hashes.SHA256()))
    (directory / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


async def test_over_tls_served_by_aiohttp_the_loop_sends(
        aiohttp_client: Any, tmp_path: Path, clock: FakeClock) -> None:
    """The socket carries TLS records: a thread writing plaintext to it would break the
    stream, so the loop sends through the SSL transport."""
    server = TestServer(create_app(Settings(data_dir=tmp_path / "data",
                                            transfer_min_free_bytes=0), clock=clock))
    await server.start_server(ssl=_tls_context(tmp_path))
    client = await aiohttp_client(server)
    assert client.make_url("/").scheme == "https"
    tech = await _tech(client)
    created = await client.post("/api/v1/sessions", headers=tech.auth, ssl=False)
    joined = await (await client.post("/api/v1/join", json={
        "key": (await created.json())["key"]}, ssl=False)).json()
    session_id, token = joined["session_id"], joined["participant_token"]
    data = os.urandom(STALLING)
    path = (await client.post(_files(session_id), ssl=False, headers={
        **TUS, **_bearer(token), "Upload-Length": str(len(data)),
        "Upload-Metadata": _metadata(filename="f.bin")})).headers["Location"]
    stored = await client.patch(path, data=io.BytesIO(data), ssl=False, headers={
        **TUS, **_bearer(token), "Upload-Offset": "0",
        "Content-Type": OFFSET_STREAM})
    assert stored.status == 204
    transfers = get_broker(client.app).transfers
    response = await client.get(path, headers=tech.auth, ssl=False)
    assert response.status == 200
    await asyncio.sleep(0.2)  # the body waits for the client, but in no sending thread
    assert transfers.sending == 0
    assert await response.read() == data


async def test_a_rate_capped_download_is_whole_and_paced(make_client: Factory) -> None:
    rate = 4 * MiB
    client = await make_client(transfer_rate_bytes_per_second=rate)
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(3 * MiB + 5)
    path = await _stored_file(client, session_id, token, data)
    conn = await RawConnection.open(client)
    try:
        status, headers = await conn.get(path, tech.token)
        started = time.monotonic()
        assert status == 200 and await conn.body(headers) == data
        # A quarter of a second's worth may go at once; the rest at the rate.
        assert time.monotonic() - started >= (len(data) - SEND_BYTES - rate / 4) / rate * 0.9
    finally:
        await conn.close()


async def test_shutdown_stops_a_download_in_progress(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(STALLING)
    path = await _stored_file(client, session_id, token, data)
    transfers = get_broker(client.app).transfers
    conn = await RawConnection.open(client)
    try:
        status, headers = await conn.get(path, tech.token)
        assert status == 200
        await _until(lambda: transfers.sending == 1)
        async with asyncio.timeout(5):  # not the 60 s a handler gets to finish
            await client.close()
        assert transfers.sending == 0
        received = b""
        with contextlib.suppress(ConnectionError):  # the end comes before all the data
            while part := await conn.reader.read(MiB):
                received += part
        assert len(received) < len(data) and received == data[:len(received)]
    finally:
        await conn.close()


# -- uploads read by a thread straight from the socket -----------------------------------


LONG_BODY = LEND_MIN_BYTES + 3 * MiB + 4321  # read by threads (shorter ones by the loop)


async def _paused_body(data: bytes, at: int, until: Callable[[], Awaitable[None]]
                       ) -> AsyncIterator[bytes]:
    """`data` as a request body that stops after `at` bytes until `until` returns."""
    for start in range(0, at, 256 * 1024):
        yield data[start:min(at, start + 256 * 1024)]
    await until()
    for start in range(at, len(data), 256 * 1024):
        yield data[start:start + 256 * 1024]


async def test_a_long_upload_is_read_by_a_thread_byte_identical(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(LONG_BODY)
    path = (await _create(client, session_id, token, len(data))).headers["Location"]
    transfers = get_broker(client.app).transfers
    chat = await open_socket(client, session_id, tech.token)

    async def meanwhile() -> None:
        await _until(lambda: transfers.receiving == 1)  # a thread reads; the loop answers
        await chat.ws.send_json({"type": "chat.send", "id": "c1", "text": "still here?"})
        while (frame := await chat.next())["type"] != "event":
            pass
        assert frame["event"]["text"] == "still here?"

    try:
        response = await client.patch(path, data=_paused_body(data, 2 * MiB, meanwhile),
                                      headers={**TUS, **_bearer(token), "Upload-Offset": "0",
                                               "Content-Type": OFFSET_STREAM,
                                               "Content-Length": str(len(data))})
    finally:
        await chat.close()
    assert response.status == 204 and response.headers["Upload-Offset"] == str(len(data))
    # aiohttp's parser never saw the body, so this connection carries no other request.
    assert response.headers["Connection"] == "close"
    assert transfers.receiving == 0
    assert await (await _download(client, path, tech.token)).read() == data
    (offered,) = await _events(client, tech, session_id, "file.offered")
    assert offered["sha256"] == hashlib.sha256(data).hexdigest()


async def test_short_bodies_keep_the_connection_alive(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(2 * MiB)
    path = (await _create(client, session_id, token, len(data))).headers["Location"]
    conn = await RawConnection.open(client)
    try:
        for offset in (0, MiB):  # two requests, one connection
            conn.start_patch(path, token, offset, MiB)
            conn.writer.write(data[offset:offset + MiB])
            status, headers = await conn.response()
            assert status == 204 and headers["upload-offset"] == str(offset + MiB)
            assert "connection" not in headers
    finally:
        await conn.close()
    assert await (await _download(client, path, tech.token)).read() == data


async def _partly_sent(client: TestClient, path: str, token: str, data: bytes
                       ) -> RawConnection:
    """A connection whose PATCH of all `data` has sent its first 3 MiB, which a receiving
    thread has taken; the rest is the caller's to send, or not."""
    conn = await RawConnection.open(client)
    conn.start_patch(path, token, 0, len(data))
    conn.writer.write(data[:3 * MiB])
    await conn.writer.drain()
    await _until(lambda: get_broker(client.app).transfers.receiving == 1)
    await asyncio.sleep(0.2)  # the thread has what was sent
    return conn


async def test_a_long_body_cut_short_keeps_what_arrived(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(LONG_BODY)
    path = (await _create(client, session_id, token, len(data))).headers["Location"]
    transfers = get_broker(client.app).transfers
    conn = await _partly_sent(client, path, token, data)
    conn.writer.transport.abort()
    await _until(lambda: transfers.receiving == 0)
    head = await client.head(path, headers={**TUS, **_bearer(token)})
    offset = int(head.headers["Upload-Offset"])
    assert 0 < offset <= 3 * MiB
    rest = await _patch(client, path, token, offset, io.BytesIO(data[offset:]))
    assert rest.status == 204
    assert await (await _download(client, path, tech.token)).read() == data


async def test_a_long_body_of_a_refused_type_gets_the_refusal(make_client: Factory) -> None:
    client = await make_client(transfer_allowed_types=SEED_004_TYPES)
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = b"MZ" + os.urandom(LONG_BODY)  # a Windows program named as a PDF
    path = (await _create(client, session_id, token, len(data), filename="report.pdf")
            ).headers["Location"]
    response = await _patch(client, path, token, 0, io.BytesIO(data))
    assert response.status == 415 and (await response.json())["error"] == "type_mismatch"
    assert response.headers["Connection"] == "close"
    assert _stored(client) == []
    listing = await client.get(_files(session_id), headers=tech.auth)  # a new connection
    (upload,) = (await listing.json())["files"]
    assert upload["state"] == "rejected" and upload["reason"] == "type_mismatch"


async def test_with_every_receiving_thread_busy_the_loop_reads(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    transfers = get_broker(client.app).transfers
    stalled = []
    try:
        for _ in range(RECEIVE_THREADS):
            path = (await _create(client, session_id, token, LONG_BODY)).headers["Location"]
            conn = await RawConnection.open(client)
            stalled.append(conn)
            conn.start_patch(path, token, 0, LONG_BODY)
            conn.writer.write(os.urandom(MiB))
        await _until(lambda: transfers.receiving == RECEIVE_THREADS)
        data = os.urandom(LONG_BODY)
        path = (await _create(client, session_id, token, len(data))).headers["Location"]
        response = await _patch(client, path, token, 0, io.BytesIO(data))
        assert response.status == 204 and "Connection" not in response.headers
        assert transfers.receiving == RECEIVE_THREADS
        assert await (await _download(client, path, tech.token)).read() == data
    finally:
        for conn in stalled:
            await conn.close()
    await _until(lambda: transfers.receiving == 0)


async def test_shutdown_stops_an_upload_read_by_a_thread(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    data = os.urandom(LONG_BODY)
    path = (await _create(client, session_id, token, len(data))).headers["Location"]
    transfers = get_broker(client.app).transfers
    conn = await _partly_sent(client, path, token, data)
    try:
        async with asyncio.timeout(5):  # not the 120 s a silent client gets
            await client.close()
        assert transfers.receiving == 0
    finally:
        await conn.close()
    restarted = await make_client()
    head = await restarted.head(path, headers={**TUS, **_bearer(token)})
    offset = int(head.headers["Upload-Offset"])
    assert 0 < offset <= 3 * MiB  # what arrived was kept
    assert (await _patch(restarted, path, token, offset,
                        io.BytesIO(data[offset:]))).status == 204
    assert await (await _download(restarted, path, tech.token)).read() == data


async def test_a_file_still_arriving_is_not_downloadable(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    path = (await _create(client, session_id, token, 100)).headers["Location"]
    response = await _download(client, path, tech.token)
    assert response.status == 404 and (await response.json())["error"] == "not_complete"


# -- tus protocol details ---------------------------------------------------------------


async def test_tus_protocol_details(make_client: Factory) -> None:
    client = await make_client(transfer_max_bytes=0)
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    options = await client.options(_files(session_id))
    assert options.status == 204
    assert options.headers["Tus-Version"] == "1.0.0"
    assert set(options.headers["Tus-Extension"].split(",")) == {
        "creation", "checksum", "termination", "expiration"}
    assert options.headers["Tus-Checksum-Algorithm"] == "sha1,sha256"
    assert "Tus-Max-Size" not in options.headers
    old = await client.post(_files(session_id), headers={
        **_bearer(token), "Tus-Resumable": "0.2.2", "Upload-Length": "1"})
    assert old.status == 412 and old.headers["Tus-Version"] == "1.0.0"
    raw = _metadata(filename="a.txt", note="for you")
    created = await client.post(_files(session_id), headers={
        **TUS, **_bearer(token), "Upload-Length": "10", "Upload-Metadata": raw})
    assert created.status == 201 and created.headers["Tus-Resumable"] == "1.0.0"
    path = created.headers["Location"]
    assert path.startswith(_files(session_id)) and "Upload-Expires" in created.headers
    head = await client.head(path, headers={**TUS, **_bearer(token)})
    assert head.headers["Upload-Metadata"] == raw and head.headers["Upload-Length"] == "10"
    wrong_type = await client.patch(path, data=b"x", headers={
        **TUS, **_bearer(token), "Upload-Offset": "0", "Content-Type": "text/plain"})
    assert wrong_type.status == 415
    assert (await _patch(client, path, token, 0, b"01234")).headers["Upload-Offset"] == "5"
    mismatch = await _patch(client, path, token, 3, b"34567")
    assert mismatch.status == 409 and (await mismatch.json())["error"] == "offset_mismatch"
    done = await _patch(client, path, token, 5, b"56789")
    assert done.status == 204 and "Upload-Expires" not in done.headers
    bad_meta = await client.post(_files(session_id), headers={
        **TUS, **_bearer(token), "Upload-Length": "1", "Upload-Metadata": "filename !!!"})
    assert bad_meta.status == 400
    for bad in ("²", "-1", "1e3", "9" * 19):
        odd = await client.post(_files(session_id), headers={
            **TUS, **_bearer(token), "Upload-Length": bad})
        assert odd.status == 400 and (await odd.json())["error"] == "bad_header", bad
    deferred = await client.post(_files(session_id), headers={
        **TUS, **_bearer(token), "Upload-Defer-Length": "1"})
    assert deferred.status == 400
    empty = await _create(client, session_id, token, 0)
    assert empty.status == 201
    assert (await _download(client, empty.headers["Location"], token)).status == 200


# -- what the other side sees ----------------------------------------------------------


async def test_the_other_participant_sees_the_offer_over_the_socket(
        make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    socket_ = await open_socket(client, session_id, tech.token)
    try:
        data = b"%PDF-1.7\n" + os.urandom(2 * MiB)
        path = await _upload(client, session_id, token, data, "scan.pdf")
        progress = await socket_.next("file.progress")
        assert progress["name"] == "scan.pdf" and progress["size"] == len(data)
        assert progress["sender"]["role"] == "end_user"
        offered = await socket_.next_event("file.offered")
    finally:
        await socket_.close()
    assert offered == {**offered, "name": "scan.pdf", "size": len(data),
                       "content_type": "application/pdf", "url": path,
                       "sha256": hashlib.sha256(data).hexdigest()}
    assert offered["author"]["role"] == "end_user"
    transcript = await client.get(f"/api/v1/sessions/{session_id}/transcript", headers=tech.auth)
    assert (f"* file.offered: scan.pdf ({len(data)} bytes, SHA-256 "
            f"{hashlib.sha256(data).hexdigest()}) (Guest)") in await transcript.text()


async def test_sender_cancels_and_takes_back(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    path = (await _create(client, session_id, token, 1000)).headers["Location"]
    await _patch(client, path, token, 0, b"x" * 400)
    assert (await client.delete(path, headers={**TUS, **_bearer(token)})).status == 204
    assert (await client.head(path, headers={**TUS, **_bearer(token)})).status == 410
    assert (await _patch(client, path, token, 400, b"x" * 600)).status == 410
    (cancelled,) = await _events(client, tech, session_id, "file.cancelled")
    assert cancelled["reason"] == "cancelled" and cancelled["received"] == 400
    assert _stored(client) == []
    sent = await _upload(client, session_id, tech.token, b"oops, wrong file")
    assert (await client.delete(sent, headers={**TUS, **_bearer(token)})).status == 403
    assert (await client.delete(sent, headers={**TUS, **tech.auth})).status == 204
    assert (await _download(client, sent, token)).status == 410
    (removed,) = await _events(client, tech, session_id, "file.removed")
    assert removed["reason"] == "sender" and removed["author"]["role"] == "technician"


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


async def test_ended_session_takes_no_files(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    await client.post(f"/api/v1/sessions/{session_id}/end", headers=tech.auth)
    refused = await _create(client, session_id, token, 10)
    assert refused.status == 409 and (await refused.json())["error"] == "session_ended"


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
