"""The webhook API (admins only): endpoints, their secrets, test events and delivery logs.
`docs/api.md` lists the routes, `docs/webhooks.md` what is sent."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.clock import isoformat
from broker.errors import InvalidInput
from broker.inputs import in_range, whole_number
from broker.technicians import Scope
from broker.webhooks import Endpoint, EventType, Message, MessageStatus
from broker.webhooks.model import event_types

from .api import json_body
from .handoff import admin
from .scopes import needs
from .state import get_broker

routes = web.RouteTableDef()


def _when(value: float | None) -> str | None:
    return isoformat(value) if value is not None else None


def webhook_json(endpoint: Endpoint) -> dict[str, Any]:
    return {"id": endpoint.id, "url": endpoint.url, "description": endpoint.description,
            "events": [t.value for t in endpoint.event_types], "enabled": endpoint.enabled,
            "disabled_reason": endpoint.disabled_reason,
            "previous_secret_valid_until": _when(endpoint.rotating_until),
            "failing_since": _when(endpoint.failing_since),
            "created_at": isoformat(endpoint.created_at),
            "updated_at": isoformat(endpoint.updated_at)}


def message_json(message: Message) -> dict[str, Any]:
    return {"id": message.id, "event_id": message.event_id, "type": message.event_type,
            "session_id": message.session_id, "status": message.status.value,
            "attempts": message.attempts, "response_status": message.response_status,
            "error": message.error, "next_attempt_at": _when(message.next_attempt_at),
            "created_at": isoformat(message.created_at),
            "updated_at": isoformat(message.updated_at),
            "delivered_at": _when(message.delivered_at)}


def _with_secret(endpoint: Endpoint, secret: str) -> dict[str, Any]:
    """An endpoint and its new secret: the only answers that ever hold a secret."""
    return {**webhook_json(endpoint), "secret": secret}


def _id(request: web.Request) -> str:
    return request.match_info["id"]


@routes.get("/api/v1/webhooks")
@needs(Scope.ADMIN)
async def list_webhooks(request: web.Request) -> web.Response:
    await admin(request)
    endpoints = await get_broker(request.app).webhooks.endpoints.all()
    return web.json_response({"webhooks": [webhook_json(e) for e in endpoints],
                              "event_types": [t.value for t in EventType]})


@routes.post("/api/v1/webhooks")
@needs(Scope.ADMIN)
async def add_webhook(request: web.Request) -> web.Response:
    technician = await admin(request)
    data = await json_body(request)
    url = data.get("url")
    if not isinstance(url, str):
        raise InvalidInput("The field 'url' is required: the endpoint's address.")
    endpoint, secret = await get_broker(request.app).webhooks.add(
        url, event_types(data.get("events")), data.get("description", ""),
        technician.id)
    return web.json_response(_with_secret(endpoint, secret), status=201)


@routes.patch("/api/v1/webhooks/{id}")
@needs(Scope.ADMIN)
async def change_webhook(request: web.Request) -> web.Response:
    await admin(request)
    data = await json_body(request)
    unknown = set(data) - {"url", "events", "description", "enabled"}
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))[:200]}.")
    enabled = data.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise InvalidInput("enabled must be true or false.")
    endpoint = await get_broker(request.app).webhooks.change(
        _id(request), url=data.get("url"), description=data.get("description"),
        event_types=event_types(data["events"]) if "events" in data else None,
        enabled=enabled)
    return web.json_response(webhook_json(endpoint))


@routes.delete("/api/v1/webhooks/{id}")
@needs(Scope.ADMIN)
async def remove_webhook(request: web.Request) -> web.Response:
    await admin(request)
    await get_broker(request.app).webhooks.remove(_id(request))
    return web.Response(status=204)


@routes.post("/api/v1/webhooks/{id}/rotate")
@needs(Scope.ADMIN)
async def rotate_secret(request: web.Request) -> web.Response:
    await admin(request)
    endpoint, secret = await get_broker(request.app).webhooks.rotate(_id(request))
    return web.json_response(_with_secret(endpoint, secret))


@routes.post("/api/v1/webhooks/{id}/test")
@needs(Scope.ADMIN)
async def send_test(request: web.Request) -> web.Response:
    await admin(request)
    message = await get_broker(request.app).webhooks.send_test(_id(request))
    return web.json_response(message_json(message), status=202)


@routes.get("/api/v1/webhooks/{id}/deliveries")
@needs(Scope.ADMIN)
async def delivery_log(request: web.Request) -> web.Response:
    await admin(request)
    broker = get_broker(request.app)
    endpoint = await broker.webhooks.endpoints.get(_id(request))
    query = request.query
    status = None
    if query.get("status"):
        try:
            status = MessageStatus(query["status"])
        except ValueError:
            raise InvalidInput("status must be one of "
                               f"{', '.join(s.value for s in MessageStatus)}.") from None
    limit = in_range(whole_number(query.get("limit", "50"), "limit", minimum=1), "limit")
    before = whole_number(query["before"], "before") if query.get("before") else None
    found = await broker.webhooks.outbox.log(endpoint.id, limit=min(limit, 200),
                                             before=before, status=status)
    return web.json_response({"deliveries": [message_json(m) for m in found]})
