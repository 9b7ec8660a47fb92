"""Which scope of an API token each API route needs.

Every handler under /api/ declares it with `@needs(Scope.X)` below its route decorator,
or `@needs(NO_TOKEN)` where no technician's API token belongs (public routes, routes of
end users, the dashboard's cookie socket). tests/test_token_scopes.py fails for an API
route without a declaration and calls every route with a token of each scope. A token
presented where nothing was declared (the pages) is refused, as on NO_TOKEN routes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Final, TypeVar

from aiohttp import web

from broker.technicians import Scope

_ATTRIBUTE: Final = "_token_scope"
H = TypeVar("H", bound=Callable[..., Any])


class NoToken(enum.Enum):
    """The route takes no technician's API token."""

    NO_TOKEN = enum.auto()


NO_TOKEN: Final = NoToken.NO_TOKEN
Need = Scope | NoToken


def needs(need: Need) -> Callable[[H], H]:
    def mark(handler: H) -> H:
        setattr(handler, _ATTRIBUTE, need)
        return handler
    return mark


def declared(handler: object) -> Need | None:
    """The handler's declaration, or None if it has none."""
    need = getattr(handler, _ATTRIBUTE, None)
    return need if isinstance(need, Scope | NoToken) else None


def route_need(request: web.Request) -> Need | None:
    return declared(request.match_info.route.handler)
