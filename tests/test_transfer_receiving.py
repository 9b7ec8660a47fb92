"""Upload bodies read by a thread straight from the socket: byte-identical, cut short,
refused, every thread busy, and shutdown."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp.test_utils import TestClient

from broker.transfer.receiving import RECEIVE_THREADS
from web.direct import LEND_MIN_BYTES
from web.state import get_broker

from .conftest import open_socket
from .transfer_support import (
    OFFSET_STREAM,
    SEED_004_TYPES,
    TUS,
    Factory,
    MiB,
    RawConnection,
    _bearer,
    _create,
    _download,
    _events,
    _files,
    _patch,
    _session,
    _stored,
    _tech,
    _until,
)
from .transfer_support import make_client as make_client  # noqa: F401 - a fixture

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
