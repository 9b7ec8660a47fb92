"""Small builders for the OpenAPI description, so each area states an operation in a few
lines: who may call it, its parameters and body, what it answers and which error codes.

`operation` adds what every operation of its kind can answer, so no area repeats it:
401 and 403 when it needs a credential (403 `csrf_failed` for a login cookie's changes),
400 `bad_json` and 413 when it reads a JSON body, 400 `bad_text` when it reads any
text from the caller (a body, a path, a query), 404 `not_found` when a
session id is in its path, 500 `internal` always. Error answers list their codes as an
`enum` of the error object's `error`, so an undescribed code fails the schemathesis run.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

Schema = dict[str, Any]
Errors = Mapping[int, Sequence[str]]

# Who may call an operation: OpenAPI security requirements (any one of them suffices).
Security = tuple[dict[str, list[str]], ...]
TECHNICIAN: Final[Security] = ({"apiToken": []}, {"loginCookie": []})
TECHNICIAN_CHANGES: Final[Security] = ({"apiToken": []}, {"loginCookie": [], "csrfHeader": []})
PARTICIPANT: Final[Security] = ({"participantToken": []},)
PUBLIC: Final[Security] = ()
_READS: Final = frozenset({"get", "head", "options"})
_STATUS_TEXT: Final = {
    400: "Bad request", 401: "No valid credential", 403: "Not allowed", 404: "Not found",
    409: "Conflict with the current state", 410: "Gone", 412: "Precondition failed",
    413: "Too large", 415: "Unsupported media type", 416: "Range not satisfiable",
    429: "Too many requests", 460: "Checksum mismatch", 507: "Insufficient storage",
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kind = schema["type"]
    return {**schema, "type": [*(kind if isinstance(kind, list) else [kind]), "null"]}


def values(kind: type[enum.Enum]) -> Schema:
    """A string that is one of an enum's values, read from the code's own enum."""
    return {"type": "string", "enum": [member.value for member in kind]}


STRING: Final[Schema] = {"type": "string"}
INTEGER: Final[Schema] = {"type": "integer"}
BOOLEAN: Final[Schema] = {"type": "boolean"}
TIME: Final[Schema] = {"type": "string", "format": "date-time"}
TIME_OR_NULL: Final[Schema] = nullable(TIME)
ID: Final[Schema] = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}


def obj(required: Mapping[str, Schema], optional: Mapping[str, Schema] | None = None, *,
        description: str | None = None) -> Schema:
    """An object with these fields and no others: an answer with a field the description
    does not name fails the schemathesis run. (Objects that extend another spell out its
    fields, `{**FIELDS, ...}`: a closed object cannot be extended with allOf.)"""
    schema: Schema = {"type": "object",
                      "properties": {**required, **(optional or {})}}
    if required:
        schema["required"] = list(required)
    schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def listing(name: str, items: Schema) -> Schema:
    """The API's lists: an object whose one field holds the items."""
    return obj({name: array(items)})


def json_response(schema: Schema, description: str,
                  headers: Mapping[str, Schema] | None = None) -> Schema:
    response: Schema = {"description": description,
                        "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = dict(headers)
    return response


def empty_response(description: str, headers: Mapping[str, Schema] | None = None) -> Schema:
    response: Schema = {"description": description}
    if headers:
        response["headers"] = dict(headers)
    return response


def header(description: str, schema: Schema | None = None, *,
           required: bool = False) -> Schema:
    return {"description": description, "schema": schema or STRING, "required": required}


def param(name: str, where: str, schema: Schema, description: str, *,
          required: bool = False) -> Schema:
    return {"name": name, "in": where, "schema": schema, "description": description,
            "required": required or where == "path"}


def path_param(name: str, description: str, schema: Schema | None = None) -> Schema:
    return param(name, "path", schema or STRING, description)


def json_body(schema: Schema, *, required: bool = True, description: str = "") -> Schema:
    body: Schema = {"required": required, "content": {"application/json": {"schema": schema}}}
    if description:
        body["description"] = description
    return body


def error_object(codes: Sequence[str], **more: Schema) -> Schema:
    """The error object (`Error`) with one of these codes."""
    return obj({"error": {"type": "string", "enum": list(codes)}, "message": STRING, **more})


def error_response(status: int, codes: Iterable[str]) -> Schema:
    listed = sorted(set(codes))
    schema = error_object(listed)
    headers: dict[str, Schema] = {}
    if status == 401:
        headers["WWW-Authenticate"] = header(
            '`Bearer`, or `Bearer error="invalid_token"` for a token that was sent and is '
            "not valid (RFC 6750)", required=True)
    if status == 429:
        headers["Retry-After"] = header("Seconds to wait before trying again",
                                        {"type": "integer", "minimum": 1}, required=True)
    text = _STATUS_TEXT.get(status, "Refused")
    return json_response(schema, f"{text}: {', '.join(f'`{c}`' for c in listed)}", headers)


def operation(operation_id: str, summary: str, *, tags: Sequence[str],
              security: Sequence[Mapping[str, list[str]]], method: str,
              responses: Mapping[int, Schema], errors: Errors | None = None,
              parameters: Sequence[Schema] = (), body: Schema | None = None,
              description: str = "") -> Schema:
    """One operation, with the answers every operation of its kind can give."""
    found: dict[int, set[str]] = {status: set(codes) for status, codes in (errors or {}).items()}

    def add(status: int, *codes: str) -> None:
        found.setdefault(status, set()).update(codes)

    if security:
        add(401, "unauthenticated")
        add(403, "forbidden")
        if any("apiToken" in s for s in security):  # a token without the route's scope
            add(403, "insufficient_scope")
        else:  # a technician's API token where none belongs (web/scopes.py, NO_TOKEN)
            add(403, "token_not_accepted")
        if method not in _READS and any("loginCookie" in s for s in security):
            add(403, "csrf_failed")
    if body is not None and "application/json" in body["content"]:
        add(400, "bad_json")
        add(413, "request_entity_too_large")
    if (body is not None and "application/json" in body["content"]) or any(
            p["in"] in ("path", "query") for p in parameters):
        # Text that is no text (a lone surrogate, or a NUL that PostgreSQL cannot hold),
        # wherever the caller put it.
        add(400, "bad_text")
    if any(p["in"] == "path" and p["name"] == "session_id" for p in parameters):
        add(404, "not_found")
    answers: dict[str, Schema] = {str(status): schema for status, schema in responses.items()}
    for status, codes in sorted(found.items()):
        if status not in responses:  # else the area describes that answer itself
            answers[str(status)] = error_response(status, codes)
    answers["500"] = {"$ref": "#/components/responses/Internal"}
    built: Schema = {"operationId": operation_id, "summary": summary, "tags": list(tags),
                     "security": [dict(s) for s in security], "responses": answers}
    if description:
        built["description"] = description
    if parameters:
        built["parameters"] = list(parameters)
    if body is not None:
        built["requestBody"] = body
    return built
