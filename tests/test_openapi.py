"""The OpenAPI description (web/openapi/) against the router, the specification and the
docs; served at /api/v1/openapi.json for anyone, cacheable. Whether the broker answers as
it says is tests/test_openapi_fuzz.py's (schemathesis)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

from aiohttp.test_utils import TestClient
from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator

from web.openapi import PATH, document

from .live_broker import router_routes

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT: Final = document()
API: Final = [(method, path) for method, path in router_routes() if path.startswith("/api/")]
DESCRIBED: Final = {(method.upper(), path) for path, operations in DOCUMENT["paths"].items()
                    for method in operations}


def test_every_api_route_is_described() -> None:
    # aiohttp adds a HEAD to each GET route: a GET without its body, described by the GET.
    missing = [f"{method} {path}" for method, path in API
               if (method, path) not in DESCRIBED
               and not (method == "HEAD" and ("GET", path) in DESCRIBED)]
    assert not missing, (f"routes without a description in web/openapi/ (the module of "
                         f"their area, or a new one listed in _AREAS): {missing}")


def test_every_described_operation_is_a_route() -> None:
    stale = sorted(f"{method} {path}" for method, path in DESCRIBED - set(API))
    assert not stale, f"described in web/openapi/, but no route: {stale}"


def test_the_document_is_valid_openapi_3_1() -> None:
    errors = [f"{'/'.join(map(str, error.absolute_path))}: {error.message[:200]}"
              for error in OpenAPIV31SpecValidator(DOCUMENT).iter_errors()]
    assert not errors, "\n".join(errors)
    assert DOCUMENT["openapi"] == "3.1.0"


def _error_codes(node: Any) -> set[str]:
    """Every code an error answer of the description lists."""
    found: set[str] = set()
    if isinstance(node, dict):
        error = node.get("properties", {}).get("error", {})
        found.update(error.get("enum", []))
        if "const" in error:
            found.add(error["const"])
        for value in node.values():
            found |= _error_codes(value)
    elif isinstance(node, list):
        for value in node:
            found |= _error_codes(value)
    return found


def test_described_error_codes_are_documented() -> None:
    """docs/api.md explains each code the description lists (and the schemathesis run
    checks that every code the broker answers is listed)."""
    codes = _error_codes(DOCUMENT["paths"]) | _error_codes(DOCUMENT["components"])
    assert {"unauthenticated", "forbidden", "bad_json", "internal", "tus_version"} <= codes
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    undocumented = sorted(code for code in codes if f"`{code}`" not in text)
    assert not undocumented, f"codes missing from docs/api.md: {undocumented}"


def test_operations_have_unique_ids_and_every_path_parameter() -> None:
    ids = [op["operationId"] for ops in DOCUMENT["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    for path, operations in DOCUMENT["paths"].items():
        for method, op in operations.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"\{(\w+)\}", path)), (method, path)
            assert "500" in op["responses"], (method, path)


def test_docs_link_the_description() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert f"`GET {PATH}`" in text


async def test_served_to_anyone_and_cacheable(client: TestClient) -> None:
    response = await client.get(PATH)
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == DOCUMENT
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    etag = response.headers["ETag"]
    again = await client.get(PATH, headers={"If-None-Match": etag})
    assert again.status == 304
    assert again.headers["ETag"] == etag
    assert await again.read() == b""
    other = await client.get(PATH, headers={"If-None-Match": '"something else"'})
    assert other.status == 200
