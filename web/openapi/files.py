"""File transfer (web/files.py): tus 1.0 uploads (core, creation, checksum, termination,
expiration) and ranged downloads, with the headers tus speaks (docs/transfer.md)."""

from __future__ import annotations

from typing import Final

from .build import (
    PARTICIPANT,
    PUBLIC,
    STRING,
    TECHNICIAN,
    TECHNICIAN_CHANGES,
    Schema,
    empty_response,
    error_response,
    header,
    json_response,
    listing,
    operation,
    param,
    path_param,
    ref,
)
from .sessions import SESSION, SESSION_ID

FILES: Final = SESSION + "/files/"
UPLOAD: Final = SESSION + "/files/{upload_id}"
_TAGS = ["files"]
_UPLOAD_ID: Final = path_param("upload_id", "An upload's id")
_BYTES: Final = {"type": "integer", "minimum": 0}
_RESUMABLE: Final = header("The tus version: `1.0.0`", {"const": "1.0.0"}, required=True)
_OFFSET: Final = header("How many bytes the broker holds", _BYTES, required=True)
_EXPIRES: Final = header("Until when an unfinished upload can be resumed (RFC 9110 date)")
_TUS: Final = param("Tus-Resumable", "header", {"const": "1.0.0"},
                    "The tus version the client speaks", required=True)
_SENDERS = (*TECHNICIAN_CHANGES, *PARTICIPANT)
_READERS = (*TECHNICIAN, *PARTICIPANT)
_GONE = {404: ["not_found", "not_complete"], 410: ["gone"]}
_TUS_ERRORS = {400: ["bad_header"], 404: ["not_found"], 410: ["gone"],
               412: ["tus_version"], 409: ["session_ended", "session_waiting"]}
_DOWNLOAD_HEADERS: Final = {
    "Content-Disposition": header("`attachment` with `filename` and `filename*`",
                                  required=True),
    "ETag": header("The file's SHA-256, quoted", required=True),
    "Repr-Digest": header("`sha-256=:<base64>:` of the whole file (RFC 9530)",
                          required=True),
    "Accept-Ranges": header("`bytes`", required=True),
    "Tus-Resumable": _RESUMABLE,
}
_FILE_BODY: Final = {"*/*": {"schema": {"type": "string", "format": "binary"}}}


def _options(*params: Schema) -> Schema:
    return operation(
        "tusOptions" if not params else "tusOptionsUpload", "What this tus server supports",
        tags=_TAGS, security=PUBLIC, method="options", parameters=[SESSION_ID, *params],
        responses={204: empty_response("The tus capabilities", {
            "Tus-Version": header("`1.0.0`", required=True),
            "Tus-Extension": header("`creation,checksum,termination,expiration`",
                                    required=True),
            "Tus-Checksum-Algorithm": header("`sha1,sha256`", required=True),
            "Tus-Max-Size": header("`transfer_max_bytes`, when set", _BYTES)})})


_unsatisfiable: Final = error_response(416, ["range_not_satisfiable"])
_unsatisfiable["headers"] = {"Content-Range": header("`bytes */<size>`", required=True)}


def _download(method: str) -> dict[int, Schema]:
    """GET, or a HEAD without Tus-Resumable: a complete file, whole or one range."""
    body = {"content": _FILE_BODY} if method == "get" else {}
    return {
        200: {"description": "The whole file", "headers": _DOWNLOAD_HEADERS, **body},
        206: {"description": "One `Range`", **body, "headers": {
            **_DOWNLOAD_HEADERS, "Content-Range": header("`bytes <first>-<last>/<size>`",
                                                         required=True)}},
        416: _unsatisfiable,
    }


_RANGE = [param("Range", "header", STRING, "`bytes=<first>-<last>`: one range"),
          param("If-Range", "header", STRING, "The `ETag`: the range only if unchanged")]

PATHS: Final[dict[str, dict[str, Schema]]] = {
    FILES: {
        "options": _options(),
        "post": operation(
            "createUpload", "Create an upload (tus creation)", tags=_TAGS,
            security=_SENDERS, method="post", parameters=[
                SESSION_ID, _TUS,
                param("Upload-Length", "header", _BYTES, "The file's size", required=True),
                param("Upload-Metadata", "header", STRING,
                      "`filename <base64>` (or `name`), optionally `checksum <base64 of "
                      "'sha256 <base64>'>`")],
            responses={201: empty_response("Created", {
                "Location": header("The upload's URL", required=True),
                "Upload-Offset": _OFFSET, "Upload-Expires": _EXPIRES,
                "Tus-Resumable": _RESUMABLE})},
            errors={**_TUS_ERRORS, 400: ["bad_header", "unsupported_checksum"],
                    413: ["file_too_large", "quota_exceeded"], 415: ["type_not_allowed"],
                    429: ["rate_limited"], 507: ["insufficient_storage"]}),
        "get": operation(
            "listFiles", "Every file of the session", tags=_TAGS, security=_READERS,
            method="get", parameters=[SESSION_ID],
            responses={200: json_response(listing("files", ref("File")), "The files",
                                          {"Tus-Resumable": _RESUMABLE})}),
    },
    UPLOAD: {
        "options": _options(_UPLOAD_ID),
        "head": operation(
            "uploadStatus", "With Tus-Resumable: the upload's offset; without: the "
            "download's headers", tags=_TAGS, security=_READERS, method="head",
            parameters=[SESSION_ID, _UPLOAD_ID,
                        param("Tus-Resumable", "header", STRING,
                              "`1.0.0`: a tus client asks where to resume"), *_RANGE],
            responses={**_download("head"), 200: empty_response(
                "The offset (tus), or the whole file's headers", {
                    "Upload-Offset": header("How many bytes the broker holds (tus)", _BYTES),
                    "Upload-Length": header("The file's size (tus)", _BYTES),
                    "Upload-Metadata": header("As sent at creation (tus)"),
                    "Upload-Expires": _EXPIRES, "Tus-Resumable": _RESUMABLE})},
            errors={**_GONE, 412: ["tus_version"]}),
        "patch": operation(
            "appendToUpload", "Append bytes at Upload-Offset (the sender)", tags=_TAGS,
            security=_SENDERS, method="patch",
            parameters=[SESSION_ID, _UPLOAD_ID, _TUS,
                        param("Upload-Offset", "header", _BYTES, "Where these bytes go",
                              required=True),
                        param("Upload-Checksum", "header", STRING,
                              "`sha1 <base64>` or `sha256 <base64>` of this body")],
            body={"required": True, "content": {"application/offset+octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}},
            responses={204: empty_response("Stored", {"Upload-Offset": _OFFSET,
                                                      "Upload-Expires": _EXPIRES,
                                                      "Tus-Resumable": _RESUMABLE})},
            errors={**_TUS_ERRORS, 400: ["bad_header", "unsupported_checksum"],
                    409: ["offset_mismatch", "upload_busy", "upload_changed",
                          "session_ended", "session_waiting"],
                    413: ["beyond_upload_length", "quota_exceeded"],
                    415: ["unsupported_media_type", "type_mismatch", "type_not_allowed"],
                    460: ["checksum_mismatch", "damaged_in_transfer"],
                    507: ["insufficient_storage"]}),
        "delete": operation(
            "terminateUpload", "Cancel an upload, or take back a sent file (the sender)",
            tags=_TAGS, security=_SENDERS, method="delete",
            parameters=[SESSION_ID, _UPLOAD_ID, _TUS],
            responses={204: empty_response("Cancelled or removed",
                                           {"Tus-Resumable": _RESUMABLE})},
            errors={**_TUS_ERRORS, 409: ["upload_changed", "upload_busy"]}),
        "get": operation(
            "downloadFile", "Download a complete file", tags=_TAGS, security=_READERS,
            method="get", parameters=[SESSION_ID, _UPLOAD_ID, *_RANGE],
            responses=_download("get"), errors=_GONE,
            description="The end user's browser may use its `sb_files_<session_id>` cookie "
                        "(scoped to this path) instead of the bearer token."),
    },
}
