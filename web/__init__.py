"""The HTTP and WebSocket edge: pages, the JSON API and the session sockets."""

from .app import create_app

__all__ = ["create_app"]
