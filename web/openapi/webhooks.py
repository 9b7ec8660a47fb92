"""Webhook endpoints, their secrets, test events and delivery logs (web/webhooks.py), for
admins; what is sent and how it is signed is docs/webhooks.md."""

from __future__ import annotations

from typing import Final

from broker.webhooks.model import EventType, MessageStatus

from .build import (
    BOOLEAN,
    INTEGER,
    STRING,
    TECHNICIAN,
    TECHNICIAN_CHANGES,
    TIME,
    TIME_OR_NULL,
    Schema,
    array,
    empty_response,
    json_body,
    json_response,
    listing,
    nullable,
    obj,
    operation,
    param,
    path_param,
    ref,
    values,
)

_TAGS = ["webhooks"]
_ADMIN = "Admins only."
_ID: Final = path_param("id", "An endpoint's id (`wh_…`)")
_EVENTS: Final = {"type": "array", "items": values(EventType), "minItems": 1}
_TARGET_REFUSED: Final = ["invalid_url", "http_not_allowed", "target_not_allowed",
                          "invalid_events", "invalid_input"]
_ENDPOINT_FIELDS: Final[dict[str, Schema]] = {
    "id": STRING, "url": STRING, "description": STRING, "events": array(values(EventType)),
    "enabled": BOOLEAN, "disabled_reason": nullable(STRING),
    "previous_secret_valid_until": TIME_OR_NULL, "failing_since": TIME_OR_NULL,
    "created_at": TIME, "updated_at": TIME}
_WITH_SECRET: Final = obj({**_ENDPOINT_FIELDS, "secret": {
    "type": "string", "pattern": "^whsec_", "description": "Shown only in this answer"}})

SCHEMAS: Final[dict[str, Schema]] = {
    "Webhook": obj(_ENDPOINT_FIELDS, description="A webhook endpoint (no secret)."),
    "WebhookDelivery": obj({
        "id": INTEGER, "event_id": STRING, "type": STRING, "session_id": nullable(STRING),
        "status": values(MessageStatus), "attempts": INTEGER,
        "response_status": nullable(INTEGER), "error": nullable(STRING),
        "next_attempt_at": TIME_OR_NULL, "created_at": TIME, "updated_at": TIME,
        "delivered_at": TIME_OR_NULL}, description="One event's delivery to an endpoint."),
}


def _admin(operation_id: str, summary: str, method: str, *, responses: dict[int, Schema],
           errors: dict[int, list[str]] | None = None, params: tuple[Schema, ...] = (),
           body: Schema | None = None) -> Schema:
    return operation(operation_id, summary, tags=_TAGS, method=method, description=_ADMIN,
                     security=TECHNICIAN if method == "get" else TECHNICIAN_CHANGES,
                     parameters=list(params), body=body, responses=responses,
                     errors={**({404: ["not_found"]} if params else {}), **(errors or {})})


PATHS: Final[dict[str, dict[str, Schema]]] = {
    "/api/v1/webhooks": {
        "get": _admin("listWebhooks", "Every endpoint, and the event types", "get",
                      responses={200: json_response(obj({
                          "webhooks": array(ref("Webhook")),
                          "event_types": array(values(EventType))}), "Oldest first")}),
        "post": _admin(
            "addWebhook", "Register an endpoint", "post",
            body=json_body(obj({"url": STRING, "events": _EVENTS},
                               {"description": {"type": "string", "maxLength": 200}})),
            responses={201: json_response(_WITH_SECRET, "The endpoint and its secret")},
            errors={400: _TARGET_REFUSED, 409: ["too_many_webhooks"]}),
    },
    "/api/v1/webhooks/{id}": {
        "patch": _admin(
            "changeWebhook", "Change an endpoint", "patch", params=(_ID,),
            body=json_body(obj({}, {"url": STRING, "events": _EVENTS,
                                    "description": {"type": "string", "maxLength": 200},
                                    "enabled": BOOLEAN})),
            responses={200: json_response(ref("Webhook"), "The endpoint")},
            errors={400: _TARGET_REFUSED}),
        "delete": _admin("removeWebhook", "Remove an endpoint and its log", "delete",
                         params=(_ID,), responses={204: empty_response("Removed")}),
    },
    "/api/v1/webhooks/{id}/rotate": {"post": _admin(
        "rotateWebhookSecret", "A new secret; the old one signs too for a grace period",
        "post", params=(_ID,),
        responses={200: json_response(_WITH_SECRET, "The endpoint and its new secret")})},
    "/api/v1/webhooks/{id}/test": {"post": _admin(
        "sendTestEvent", "Queue a `webhook.test` event for this endpoint", "post",
        params=(_ID,),
        responses={202: json_response(ref("WebhookDelivery"), "Its delivery")},
        errors={409: ["webhook_disabled"]})},
    "/api/v1/webhooks/{id}/deliveries": {"get": _admin(
        "listWebhookDeliveries", "The endpoint's delivery log, newest first", "get",
        params=(_ID,
                param("status", "query", values(MessageStatus), "Only these"),
                param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200,
                                         "default": 50}, "At most this many"),
                param("before", "query", {"type": "integer", "minimum": 0},
                      "Older than this delivery's `id` (the next page)")),
        responses={200: json_response(listing("deliveries", ref("WebhookDelivery")),
                                      "The deliveries")},
        errors={400: ["invalid_input"]})},
}
