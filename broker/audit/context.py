"""Who is acting, and from where, for whatever the current request or socket does.

The edge knows the caller's address (and, once it has checked their credentials, who
they are); the domain knows what was done. The edge sets these context variables for the
task that serves the request or socket; `AuditService.record` reads them when its caller
does not say. Each aiohttp handler runs in a task of its own, so a value set there is
seen by everything it awaits and by nothing else; background tasks (the sweeper) see
none: their acts are the broker's own.
"""

from __future__ import annotations

import contextvars

from .model import AuditActor

_ADDRESS: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "audit_address", default=None)
_ACTOR: contextvars.ContextVar[AuditActor | None] = contextvars.ContextVar(
    "audit_actor", default=None)


def set_address(address: str | None) -> None:
    """The client address of the request or socket this task serves."""
    _ADDRESS.set(address)


def set_actor(actor: AuditActor | None) -> None:
    """Who this task acts for, once their credentials were checked."""
    _ACTOR.set(actor)


def current_address() -> str | None:
    return _ADDRESS.get()


def current_actor() -> AuditActor | None:
    return _ACTOR.get()
