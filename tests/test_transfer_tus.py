"""File transfer over tus with the real tuspy client against a loopback broker: cut
connections and a broker restart, checksums, the protocol's details, and what the
other participant sees."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest
from tusclient.exceptions import TusCommunicationError
from yarl import URL

from .conftest import open_socket
from .transfer_support import (
    TUS,
    CuttingProxy,
    Factory,
    MiB,
    _bearer,
    _create,
    _download,
    _events,
    _files,
    _metadata,
    _patch,
    _session,
    _sha256_b64,
    _stored,
    _tech,
    _tus_upload,
    _upload,
)
from .transfer_support import make_client as make_client  # noqa: F401 - a fixture

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
    assert (f"Guest sent the file scan.pdf (2.1\xa0MB) (SHA-256 "
            f"{hashlib.sha256(data).hexdigest()})") in await transcript.text()


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


async def test_a_file_still_arriving_is_not_downloadable(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    path = (await _create(client, session_id, token, 100)).headers["Location"]
    response = await _download(client, path, tech.token)
    assert response.status == 404 and (await response.json())["error"] == "not_complete"


async def test_ended_session_takes_no_files(make_client: Factory) -> None:
    client = await make_client()
    tech = await _tech(client)
    session_id, token = await _session(client, tech)
    await client.post(f"/api/v1/sessions/{session_id}/end", headers=tech.auth)
    refused = await _create(client, session_id, token, 10)
    assert refused.status == 409 and (await refused.json())["error"] == "session_ended"
