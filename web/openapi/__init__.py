"""The OpenAPI 3.1 description of every /api/v1 route, served at /api/v1/openapi.json.

Each area of the API declares its operations as data in a module of this package
(`PATHS`: path as the router spells it -> method -> operation, built with `build.py`;
and `SCHEMAS`, the objects only it answers with, where it has any);
`document()` puts them together with the shared components once, at start-up, and the
route serves those bytes with an ETag. tests/test_openapi.py compares the paths with
create_app's router both ways, and tests/test_openapi_fuzz.py runs schemathesis against a
live broker: a route without a description, or an answer the description does not allow
(a status, header, error code or field), fails there.
A new route module gets a module here too, listed in `_AREAS`.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from typing import Any, Final

from aiohttp import web

from broker.technicians import Scope

from ..scopes import NO_TOKEN, declared, needs
from . import (
    audit,
    closing,
    console,
    factors,
    files,
    handoff,
    intake,
    reports,
    sessions,
    supervision,
    survey,
    technicians,
    tokens,
    transcriptmail,
    webhooks,
)
from .build import PUBLIC, Schema, json_response, operation
from .components import RESPONSES, SCHEMAS, SECURITY_SCHEMES

PATH: Final = "/api/v1/openapi.json"
_DOCUMENT: Final = web.AppKey("openapi_document", bytes)
_ETAG: Final = web.AppKey("openapi_etag", str)

_SELF: Final[dict[str, dict[str, Schema]]] = {PATH: {"get": operation(
    "getOpenApi", "This description", tags=["meta"], security=PUBLIC, method="get",
    responses={200: json_response({"type": "object"}, "OpenAPI 3.1"),
               304: {"description": "Unchanged since the `ETag` sent in `If-None-Match`"}})}}
_AREAS: Final[tuple[Any, ...]] = (sessions, handoff, console, files, intake, webhooks,
                                   technicians, audit, survey, closing, factors, tokens,
                                   transcriptmail,
                                   reports, supervision)


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Schema]] = {}
    for area_paths in [*(area.PATHS for area in _AREAS), _SELF]:
        for path, operations in area_paths.items():
            known = paths.setdefault(path, {})
            if known.keys() & operations.keys():
                raise ValueError(f"{path} {sorted(known.keys() & operations.keys())} is "
                                 "described twice")
            known.update(operations)
    schemas = dict(SCHEMAS)
    for area in _AREAS:
        for name, schema in getattr(area, "SCHEMAS", {}).items():
            if name in schemas:
                raise ValueError(f"two schemas are called {name}")
            schemas[name] = schema
    return {
        "openapi": "3.1.0",
        "info": {"title": "supportbroker API", "version": version("supportbroker"),
                 "description": "The JSON API of the remote-support broker. The prose, "
                                "with curl examples, is docs/api.md; the WebSocket frames "
                                "are in docs/protocol.md.",
                 "license": {"name": "AGPL-3.0-or-later",
                             "identifier": "AGPL-3.0-or-later"}},
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES,
                       "responses": RESPONSES},
    }


@needs(NO_TOKEN)
async def serve(request: web.Request) -> web.Response:
    """Public and the same for everyone: caches may keep it, and revalidate by ETag."""
    etag = request.app[_ETAG]
    headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=request.app[_DOCUMENT], content_type="application/json",
                        charset="utf-8", headers=headers)


def with_scopes(described: dict[str, Any], router: web.UrlDispatcher) -> dict[str, Any]:
    """Each operation's API token requirement names the scope its route declares
    (web/scopes.py): OpenAPI 3.1 lets a bearer scheme list roles."""
    for route in router.routes():
        need = declared(route.handler)
        if route.resource is None or not isinstance(need, Scope):
            continue
        found = described["paths"].get(route.resource.canonical, {}).get(route.method.lower())
        for requirement in (found or {}).get("security", []):
            if "apiToken" in requirement:
                requirement["apiToken"] = [need.value]
    return described


def setup(app: web.Application) -> None:
    body = json.dumps(with_scopes(document(), app.router), ensure_ascii=False,
                      separators=(",", ":")).encode()
    app[_DOCUMENT] = body
    app[_ETAG] = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    app.router.add_get(PATH, serve)
