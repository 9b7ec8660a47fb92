"""Broker errors become HTTP responses here, and nowhere else.

API paths (``/api/``) answer JSON ``{"error": code, "message": text}``; pages answer a
rendered error page in the visitor's language. Nothing unexpected leaks a stack trace.
"""

from __future__ import annotations

import logging

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from broker.errors import (
    KEY_EXPIRED,
    KEY_MALFORMED,
    KEY_REVOKED,
    KEY_UNKNOWN,
    KEY_USED,
    BrokerError,
    ChecksumMismatch,
    Conflict,
    Forbidden,
    Gone,
    InsufficientStorage,
    InvalidInput,
    KeyRejected,
    NotFound,
    RateLimited,
    TooLarge,
    TypeNotAllowed,
    Unauthenticated,
)

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[BrokerError], int]] = [
    # File transfer (tus): the more specific classes first.
    (Gone, 410), (TooLarge, 413), (TypeNotAllowed, 415), (ChecksumMismatch, 460),
    (InsufficientStorage, 507),
    (RateLimited, 429), (NotFound, 404), (Unauthenticated, 401), (Forbidden, 403),
    (InvalidInput, 400), (Conflict, 409),
]
_KEY_STATUS = {KEY_EXPIRED: 410, KEY_USED: 409, KEY_REVOKED: 410, KEY_UNKNOWN: 404,
               KEY_MALFORMED: 400}


def status_of(error: BrokerError) -> int:
    if isinstance(error, KeyRejected):
        return _KEY_STATUS.get(error.code, 400)
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 400


def _headers(error: BrokerError) -> dict[str, str]:
    if isinstance(error, RateLimited):
        return {"Retry-After": str(max(1, round(error.retry_after + 0.5)))}
    return {}


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BrokerError as error:
        status = status_of(error)
        if is_api(request):
            return web.json_response({"error": error.code, "message": error.message},
                                     status=status, headers=_headers(error))
        return error_page(request, error.code, status, error.message, _headers(error))
    except web.HTTPException as exc:
        if exc.status < 400 or not is_api(request):
            if exc.status in (404, 405) and not is_api(request):
                return error_page(request, "not_found", exc.status, exc.reason)
            raise
        return web.json_response({"error": exc.reason.lower().replace(" ", "_"),
                                  "message": exc.reason}, status=exc.status,
                                 headers={k: v for k, v in exc.headers.items()
                                          if k == "Allow"})
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        if is_api(request):
            return web.json_response({"error": "internal", "message": "Something went wrong."},
                                     status=500)
        return error_page(request, "internal", 500, "Something went wrong.")


def error_page(request: web.Request, code: str, status: int, message: str,
               headers: dict[str, str] | None = None) -> web.Response:
    response = aiohttp_jinja2.render_template(
        "error.html", request, {"code": code, "detail": message}, status=status)
    response.headers.update(headers or {})
    return response
