"""File transfer over HTTP: tus 1.0 uploads and ranged downloads.

    OPTIONS /api/v1/sessions/{id}/files/             what this tus server supports
    POST    /api/v1/sessions/{id}/files/             create an upload (tus creation)
    GET     /api/v1/sessions/{id}/files/             the session's files, as JSON
    HEAD    /api/v1/sessions/{id}/files/{upload}     its offset (tus), or download headers
    PATCH   /api/v1/sessions/{id}/files/{upload}     append bytes at Upload-Offset
    DELETE  /api/v1/sessions/{id}/files/{upload}     cancel it, or take back a sent file
    GET     /api/v1/sessions/{id}/files/{upload}     download it, with Range

Callers are the session's participants: the end user with their participant token as
``Authorization: Bearer`` (or, for plain download links in their browser, the
participant cookie scoped to this path), and the session's technician with an API token
or their login cookie (plus the CSRF header on changes), and technicians collaborating in
it. Nobody else, admins included.
The domain (`broker.transfer`) does the work; this module speaks tus and HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
import logging
import re
from typing import Any, Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from broker.clock import isoformat
from broker.credentials import is_participant_token
from broker.errors import Forbidden, InvalidInput
from broker.sessions import Actor, Session
from broker.technicians import Scope
from broker.transfer import BATCH_BYTES, CHECKSUM_ALGORITHMS, RequestChecksum, Upload, UploadState
from broker.transfer.names import content_disposition

from .auth import bearer_token, current_technician
from .direct import STOPPED_READING, SocketSink, close_lent, lent_body, lent_socket
from .pages import FILES_COOKIE
from .scopes import NO_TOKEN, needs
from .state import get_broker

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

TUS_VERSION: Final = "1.0.0"
TUS_EXTENSIONS: Final = "creation,checksum,termination,expiration"
FILES: Final = "/api/v1/sessions/{session_id}/files"
UPLOAD: Final = FILES + "/{upload_id}"
OFFSET_STREAM: Final = "application/offset+octet-stream"
# A request body that sends nothing for this long counts as a dropped connection.
IDLE_READ_SECONDS: Final = 120.0
_FILES_PATH = re.compile(r"^/api/v1/sessions/[^/]+/files(/|$)")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RequestBody:
    """A request body as the domain's ByteSource: bounded reads, cut-offs as
    ConnectionError, and a way for a newer request to stop this one."""

    def __init__(self, request: web.Request) -> None:
        self._content = request.content
        self._received = get_broker(request.app).metrics.transfer_bytes.labels("in")

    async def read(self, size: int) -> bytes:
        try:
            async with asyncio.timeout(IDLE_READ_SECONDS):
                while True:
                    # Whole pieces as the socket delivered them (at most the stream's
                    # buffer, 256 KiB): no copying into pieces of another size.
                    data, _ = await self._content.readchunk()
                    if data or self._content.at_eof():
                        self._received.inc(len(data))
                        return data
        except TimeoutError as exc:
            raise ConnectionResetError("the client sent nothing for too long") from exc
        except HttpProcessingError as exc:  # a body cut short or malformed on the wire
            raise ConnectionResetError(str(exc)) from exc

    def abort(self) -> None:
        self._content.set_exception(ConnectionResetError(STOPPED_READING))


def _tus_refusal(request: web.Request) -> web.Response | None:
    """412 unless the client speaks our tus version."""
    if request.headers.get("Tus-Resumable") == TUS_VERSION:
        return None
    return web.json_response(
        {"error": "tus_version", "message": f"This server speaks tus {TUS_VERSION}."},
        status=412, headers={"Tus-Version": TUS_VERSION})


async def _caller(request: web.Request, *, changes: bool) -> tuple[Session, Actor]:
    """The session in the path and which of its participants is asking."""
    broker = get_broker(request.app)
    session_id = request.match_info["session_id"]
    token = bearer_token(request)
    if token is None and not changes:
        # Plain download links in the end user's browser; the cookie's path is this API.
        token = request.cookies.get(FILES_COOKIE.format(session_id))
    if is_participant_token(token):
        return await broker.sessions.for_participant(session_id, token)
    technician = await current_technician(request)
    session = await broker.sessions.get(session_id)
    # The technicians in the session (its owner and collaborators), not everyone who may
    # manage it: an admin who is not in the session does not see its files either.
    if technician.id != session.technician_id and technician.id not in session.collaborator_ids:
        raise Forbidden("Files are for the session's participants only.")
    return session, broker.sessions.technician_actor(technician)


def _int_header(request: web.Request, name: str) -> int:
    raw = request.headers.get(name, "")
    # ASCII digits only ("²".isdigit() is true), and no more than a database column holds.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise InvalidInput(f"{name} must be a whole number of bytes.", code="bad_header")
    return int(raw)


def parse_metadata(raw: str) -> dict[str, str]:
    """tus Upload-Metadata: ``key base64value,key2 base64value2,flag``."""
    found: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        key, _, value = pair.partition(" ")
        if not key or key in found:
            raise InvalidInput("Upload-Metadata has an empty or repeated key.",
                               code="bad_header")
        try:
            found[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (ValueError, binascii.Error) as exc:
            raise InvalidInput(f"Upload-Metadata: the value of {key[:40]!r} is not base64 "
                               "of UTF-8.", code="bad_header") from exc
    return found


def _request_checksum(raw: str | None) -> RequestChecksum | None:
    if raw is None:
        return None
    algorithm, _, encoded = raw.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise InvalidInput(f"Upload-Checksum supports {', '.join(CHECKSUM_ALGORITHMS)}.",
                           code="unsupported_checksum")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise InvalidInput("Upload-Checksum: the digest is not base64.",
                           code="unsupported_checksum") from exc
    return RequestChecksum(algorithm, digest)


def _upload_headers(upload: Upload) -> dict[str, str]:
    headers = {"Upload-Offset": str(upload.offset), "Cache-Control": "no-store"}
    if upload.state is UploadState.RECEIVING and upload.expires_at is not None:
        headers["Upload-Expires"] = email.utils.formatdate(upload.expires_at, usegmt=True)
    return headers


def file_json(upload: Upload) -> dict[str, Any]:
    return {
        "upload_id": upload.id, "name": upload.name, "size": upload.size,
        "received": upload.offset, "state": upload.state.value, "type": upload.content_type,
        "sha256": upload.sha256, "url": upload.url, "sender": upload.sender.public(),
        "created_at": isoformat(upload.created_at),
        "completed_at": None if upload.completed_at is None else isoformat(upload.completed_at),
        "reason": upload.reason,
    }


@routes.route("OPTIONS", FILES + "/")
@routes.route("OPTIONS", UPLOAD)
@needs(NO_TOKEN)
async def options(request: web.Request) -> web.Response:
    limits = get_broker(request.app).transfers.limits
    headers = {"Tus-Version": TUS_VERSION, "Tus-Extension": TUS_EXTENSIONS,
               "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS)}
    if limits.max_bytes:
        headers["Tus-Max-Size"] = str(limits.max_bytes)
    return web.Response(status=204, headers=headers)


@routes.post(FILES + "/")
@needs(Scope.SESSIONS_WRITE)
async def create_upload(request: web.Request) -> web.Response:
    refusal = _tus_refusal(request)
    if refusal is not None:
        return refusal
    session, actor = await _caller(request, changes=True)
    if "Upload-Length" not in request.headers and "Upload-Defer-Length" in request.headers:
        raise InvalidInput("Send Upload-Length; deferred lengths are not supported.",
                           code="bad_header")
    length = _int_header(request, "Upload-Length")
    raw = request.headers.get("Upload-Metadata", "")
    metadata = parse_metadata(raw)
    upload = await get_broker(request.app).transfers.create(
        session.id, actor, length, name=metadata.get("filename") or metadata.get("name") or "",
        checksum=metadata.get("checksum"), metadata=raw)
    headers = _upload_headers(upload)
    headers["Location"] = upload.url
    return web.Response(status=201, headers=headers)


@routes.get(FILES + "/")
@needs(Scope.SESSIONS_READ)
async def list_files(request: web.Request) -> web.Response:
    session, _ = await _caller(request, changes=False)
    uploads = await get_broker(request.app).transfers.for_session(session.id)
    return web.json_response({"files": [file_json(u) for u in uploads]})


@routes.route("HEAD", UPLOAD)
@needs(Scope.SESSIONS_READ)
async def head_upload(request: web.Request) -> web.StreamResponse:
    if "Tus-Resumable" not in request.headers:
        return await download(request)  # a plain HEAD: the download's headers
    refusal = _tus_refusal(request)
    if refusal is not None:
        return refusal
    session, actor = await _caller(request, changes=False)
    upload = await get_broker(request.app).transfers.status(
        session.id, request.match_info["upload_id"], actor)
    headers = _upload_headers(upload)
    headers["Upload-Length"] = str(upload.size)
    if upload.metadata:
        headers["Upload-Metadata"] = upload.metadata
    return web.Response(status=200, headers=headers)


@routes.patch(UPLOAD)
@needs(Scope.SESSIONS_WRITE)
async def append(request: web.Request) -> web.Response:
    refusal = _tus_refusal(request)
    if refusal is not None:
        return refusal
    session, actor = await _caller(request, changes=True)
    if request.content_type != OFFSET_STREAM:
        raise web.HTTPUnsupportedMediaType(text=f"PATCH bodies are {OFFSET_STREAM}.")
    offset = _int_header(request, "Upload-Offset")
    checksum = _request_checksum(request.headers.get("Upload-Checksum"))
    broker = get_broker(request.app)
    received = broker.metrics.transfer_bytes.labels("in")
    # A long body is read by threads straight from the socket (web/direct.py), unless
    # every receiving thread is busy.
    with broker.transfers.receiver() as start, \
            lent_body(request, start, received.inc) as lent:
        upload = await broker.transfers.append(
            session.id, request.match_info["upload_id"], actor, offset,
            lent or RequestBody(request), checksum=checksum, length=request.content_length)
    return web.Response(status=204, headers=_upload_headers(upload))


@routes.delete(UPLOAD)
@needs(Scope.SESSIONS_WRITE)
async def terminate(request: web.Request) -> web.Response:
    refusal = _tus_refusal(request)
    if refusal is not None:
        return refusal
    session, actor = await _caller(request, changes=True)
    await get_broker(request.app).transfers.terminate(
        session.id, request.match_info["upload_id"], actor)
    return web.Response(status=204)


class _Unsatisfiable(Exception):
    """A Range that lies wholly outside the file (answered with 416)."""


def _byte_range(request: web.Request, upload: Upload) -> tuple[int, int] | None:
    """[start, end) of a single satisfiable Range, None for the whole file."""
    header = request.headers.get("Range")
    if header is None:
        return None
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range != _etag(upload):
        return None  # the file changed since the client's first part: send it whole
    match = _RANGE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None  # not a single byte range we understand: ignored, as RFC 9110 allows
    first, last = match.groups()
    size = upload.size
    if first == "":
        start, end = max(0, size - _position(last)), size
        if _position(last) == 0:
            start = size
    else:
        start = _position(first)
        end = size if last == "" else min(size, _position(last) + 1)
        if last != "" and _position(last) < start:
            return None
    if start >= size or start >= end:
        raise _Unsatisfiable()
    return start, end


def _position(digits: str) -> int:
    """A Range position; past 18 digits it is beyond any file, and not parsed (int()
    refuses more than 4300 digits)."""
    return int(digits) if len(digits) <= 18 else 10**18


def _etag(upload: Upload) -> str:
    return f'"{upload.sha256}"'


@routes.get(UPLOAD, allow_head=False)
@needs(Scope.SESSIONS_READ)
async def download(request: web.Request) -> web.StreamResponse:
    session, actor = await _caller(request, changes=False)
    transfers = get_broker(request.app).transfers
    upload = await transfers.downloadable(session.id, request.match_info["upload_id"])
    try:
        wanted = _byte_range(request, upload)
    except _Unsatisfiable:
        return web.json_response(
            {"error": "range_not_satisfiable", "message": "The range is outside the file."},
            status=416, headers={"Content-Range": f"bytes */{upload.size}"})
    start, end = wanted if wanted is not None else (0, upload.size)
    await transfers.downloading(upload, actor, start)
    response = web.StreamResponse(status=200 if wanted is None else 206)
    response.content_type = upload.content_type
    response.content_length = end - start
    response.headers.update({
        "Content-Disposition": content_disposition(upload.name),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
        "Accept-Ranges": "bytes",
        "ETag": _etag(upload),
        # RFC 9530: the SHA-256 of the whole file, for clients that verify downloads.
        "Repr-Digest": "sha-256=:" + base64.b64encode(
            bytes.fromhex(upload.sha256 or "")).decode() + ":",
    })
    if wanted is not None:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{upload.size}"
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    sent = get_broker(request.app).metrics.transfer_bytes.labels("out")
    async with lent_socket(request) as sock:
        if sock is not None:
            sink = SocketSink(sock, sent.inc)
            try:
                if await transfers.send(upload, start, end, sink):
                    await response.write_eof()  # the body is out: nothing left to write
                    return response
            except ConnectionError:
                log.debug("download of %s stopped after %d bytes", upload.id, sink.sent)
                # Content-Length promised more: this connection cannot carry another
                # response.
                response.force_close()
                return response
    # No socket to lend, or every sending thread busy: the loop sends what a worker
    # thread decrypts, batch by batch.
    if request.transport is not None:
        # Let a whole batch wait in the socket's buffer: the loop then hands the kernel
        # more per wake-up instead of pausing for every 64 KiB (asyncio's default).
        request.transport.set_write_buffer_limits(high=2 * BATCH_BYTES)
    try:
        async with contextlib.aclosing(transfers.read(upload, start, end)) as batches:
            async for batch in batches:
                # A view: when the socket takes only part of it, asyncio keeps the rest
                # without first copying it into a new bytes object.
                await response.write(memoryview(batch))
                sent.inc(len(batch))
        await response.write_eof()
    except ConnectionError:
        log.debug("download of %s stopped by the client", upload.id)
    return response


async def _tus_headers(request: web.Request, response: web.StreamResponse) -> None:
    if _FILES_PATH.match(request.path):
        response.headers.setdefault("Tus-Resumable", TUS_VERSION)


async def _stop_uploads(app: web.Application) -> None:
    """At shutdown, running uploads keep what they received and end, so clients resume."""
    get_broker(app).transfers.interrupt_all()


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    app.on_response_prepare.append(_tus_headers)
    app.on_response_prepare.append(close_lent)
    app.on_shutdown.append(_stop_uploads)
