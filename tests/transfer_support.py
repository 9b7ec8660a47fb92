"""What the file-transfer tests share: a broker on a loopback port, tus helpers
(tuspy and raw requests), a proxy that cuts uploads off, and an HTTP connection
driven by hand."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import io
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tusclient.client import TusClient
from yarl import URL

from broker.clock import FakeClock
from broker.settings import Settings
from web import create_app
from web.state import get_broker

from .conftest import PASSWORD, Tech, join, start_session

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
