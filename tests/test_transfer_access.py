"""Who may reach a session's files, and downloads with ranges and across batches."""

from __future__ import annotations

import base64
import hashlib
import os

from broker.transfer import BATCH_BYTES
from broker.transfer.records import CHUNK

from .conftest import csrf_from, login, start_session
from .transfer_support import (
    OFFSET_STREAM,
    TUS,
    Factory,
    _bearer,
    _create,
    _download,
    _files,
    _metadata,
    _patch,
    _session,
    _tech,
    _upload,
)
from .transfer_support import make_client as make_client  # noqa: F401 - a fixture

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
