"""For load balancers and monitoring: liveness, readiness and Prometheus metrics.

``GET /healthz`` answers 200 while the process serves requests at all; ``GET /readyz``
answers 200 only while the database (and, with several nodes, Redis) answer too, so a
load balancer sends no new connections to a node that cannot serve them; ``GET /metrics``
is the Prometheus text exposition (broker/metrics.py says what each figure counts).
"""

from __future__ import annotations

import logging

from aiohttp import web

from broker.metrics import CONTENT_TYPE

from .state import get_broker

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    return web.json_response({"status": "ok", "node": broker.settings.node_id},
                             headers={"Cache-Control": "no-store"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    checks = await broker.readiness()
    ready = all(result == "ok" for result in checks.values())
    return web.json_response({"status": "ok" if ready else "unavailable",
                              "node": broker.settings.node_id, "checks": checks},
                             status=200 if ready else 503,
                             headers={"Cache-Control": "no-store"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    broker = get_broker(request.app)
    try:
        broker.metrics.count_sessions(await broker.sessions.count_by_state())
    except Exception:
        # The node's own figures are still worth having; the database ones stay as they were.
        log.exception("could not read the session figures from the database")
    return web.Response(body=broker.metrics.render(),
                        headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})
