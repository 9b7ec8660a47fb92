"""Broker errors become HTTP responses here, and nowhere else.

API paths (``/api/``) answer JSON ``{"error": code, "message": text}``; pages answer a
rendered error page in the visitor's language. Nothing unexpected leaks a stack trace.
"""

from __future__ import annotations

import logging
import secrets
from typing import Final

import aiohttp_jinja2
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage
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
from broker.inputs import BAD_TEXT, is_text
from broker.technicians import InsufficientScope

from .accesslog import redact
from .auth import bearer_token

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


def _headers(request: web.Request, error: BrokerError) -> dict[str, str]:
    if isinstance(error, RateLimited):
        return {"Retry-After": str(max(1, round(error.retry_after + 0.5)))}
    if isinstance(error, InsufficientScope):  # RFC 6750 3.1
        return {"WWW-Authenticate":
                f'Bearer error="insufficient_scope", scope="{error.scope.value}"'}
    if isinstance(error, Unauthenticated):
        # RFC 6750: a bearer token that was sent and is not valid says so; a request
        # without one only learns which scheme to use.
        if bearer_token(request) is not None:
            return {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        return {"WWW-Authenticate": "Bearer"}
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
                                     status=status, headers=_headers(request, error))
        return error_page(request, error.code, status, error.message, _headers(request, error))
    except web.HTTPException as exc:
        if exc.status >= 500:  # e.g. aiohttp_jinja2's "Template 'x' not found": a fault
            return _internal(request)
        if exc.status < 400 or not is_api(request):
            if exc.status in (404, 405) and not is_api(request):
                return error_page(request, "not_found", exc.status, exc.reason)
            raise
        return web.json_response({"error": exc.reason.lower().replace(" ", "_"),
                                  "message": exc.reason}, status=exc.status,
                                 headers={k: v for k, v in exc.headers.items()
                                          if k == "Allow"})
    except Exception:
        return _internal(request)


@web.middleware
async def text_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuses a path or query string that is no text (`is_text`: a NUL in an id or a
    search reached the database). Inside aiohttp_jinja2's middleware, so that the error
    page it becomes has its template context."""
    if not is_text(request.path) or not all(is_text(name) and is_text(value)
                                            for name, value in request.query.items()):
        raise InvalidInput(BAD_TEXT, code="bad_text")
    return await handler(request)


class ClientFaults(logging.Filter):
    """On aiohttp's server logger: a request that is no valid HTTP (a request line or a
    header over 8 KiB, say) is the client's fault, which aiohttp logs as an error with a
    traceback. It becomes a warning naming the kind of fault only: the line itself may
    carry a key or a token."""

    def filter(self, record: logging.LogRecord) -> bool:
        fault = record.exc_info[1] if record.exc_info else None
        if isinstance(fault, BadHttpMessage):
            client = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "refused a request from %s: %s (%d)", (
                client, type(fault).__name__, fault.code)
            record.exc_info = record.exc_text = None
        return True


CLIENT_FAULTS: Final = ClientFaults()


def _internal(request: web.Request) -> web.Response:
    """A fault of the broker: logged with its traceback under a fresh reference, which the
    answer names; the exception's own text stays in the log."""
    reference = secrets.token_hex(6)
    log.exception("internal error %s on %s %s", reference, request.method,
                  redact(request.path))
    message = f"Something went wrong (reference {reference})."
    if is_api(request):
        return web.json_response({"error": "internal", "message": message,
                                  "reference": reference}, status=500)
    return error_page(request, "internal", 500, message, reference=reference)


def error_page(request: web.Request, code: str, status: int, message: str,
               headers: dict[str, str] | None = None, *,
               reference: str | None = None) -> web.Response:
    response = aiohttp_jinja2.render_template(
        "error.html", request, {"code": code, "detail": message, "reference": reference},
        status=status)
    response.headers.update(headers or {})
    return response
