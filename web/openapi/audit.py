"""The audit log (web/audit.py; docs/api.md, Audit log; docs/audit.md)."""

from __future__ import annotations

from typing import Final

from broker.audit import Action, ActorKind

from .build import (
    INTEGER,
    STRING,
    TECHNICIAN,
    Schema,
    array,
    json_response,
    nullable,
    obj,
    operation,
    param,
    ref,
    values,
)

_TAGS = ["audit"]
_HASH: Final[Schema] = {"type": "string", "pattern": "^[0-9a-f]{64}$"}

SCHEMAS: Final[dict[str, Schema]] = {
    "AuditRecord": obj({
        "id": INTEGER, "at": {"type": "string", "format": "date-time"},
        "timestamp": {"type": "number", "description": "Seconds since the epoch, as hashed"},
        "actor": obj({"kind": values(ActorKind), "id": nullable(STRING), "name": STRING}),
        "address": nullable(STRING), "session_id": nullable(STRING),
        "action": values(Action), "details": {"type": "object"},
        "prev_hash": _HASH, "hash": _HASH},
        description="One act; `prev_hash` is the SHA-256 of the record before it"),
}

PATHS: Final[dict[str, dict[str, Schema]]] = {
    "/api/v1/audit": {"get": operation(
        "listAudit", "The audit log, newest first, filtered, a page at a time", tags=_TAGS,
        security=TECHNICIAN, method="get", description="Admins only.",
        parameters=[
            param("from", "query", STRING, "ISO 8601: at or after"),
            param("to", "query", STRING, "ISO 8601: before (a date: that day included)"),
            param("actor_kind", "query", values(ActorKind), "Only this kind of actor"),
            param("actor_id", "query", STRING, "Only this actor (a technician's id)"),
            param("session_id", "query", STRING, "Only records about this session"),
            param("action", "query", STRING, "Actions, comma-separated"),
            param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500,
                                     "default": 100}, "At most this many"),
            param("cursor", "query", STRING, "The `next_cursor` of the page before")],
        responses={200: json_response(obj({
            "records": array(ref("AuditRecord")), "next_cursor": nullable(STRING)}),
            "A page; `next_cursor` is null on the last")},
        errors={400: ["invalid_input", "invalid_time", "bad_cursor", "invalid_action"]})},
}
