"""Downloads sent from a thread straight to the client's socket: byte-identical,
keep-alive, a stalled client, every thread busy, TLS, rate caps and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from broker.clock import FakeClock
from broker.settings import Settings
from broker.transfer.records import CHUNK
from broker.transfer.sending import SEND_BYTES, SEND_THREADS
from web import create_app
from web.state import get_broker

from .conftest import open_socket
from .transfer_support import (
    OFFSET_STREAM,
    TUS,
    Factory,
    MiB,
    RawConnection,
    _bearer,
    _download,
    _files,
    _metadata,
    _session,
    _stored_file,
    _tech,
    _tls_context,
    _until,
)
from .transfer_support import make_client as make_client  # noqa: F401 - a fixture

# -- downloads sent from a thread straight to the socket -----------------------------------


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
