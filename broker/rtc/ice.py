"""ICE servers for a participant: STUN and TURN URLs from settings, TURN with time-limited
credentials in the TURN REST API scheme (coturn's ``use-auth-secret``).

The username is ``<expiry unix time>:<user>``; the password is
``base64(HMAC-SHA1(turn_secret, username))``. The TURN server recomputes it from the shared
secret and refuses it once the expiry has passed, so the broker stores nothing.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
from typing import Any

from ..settings import Settings


def turn_credentials(secret: str, user: str, expires_at: int) -> tuple[str, str]:
    """(username, password) valid until `expires_at` (unix seconds)."""
    username = f"{expires_at}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


@dataclasses.dataclass(frozen=True, slots=True)
class IceConfig:
    """What one participant's RTCPeerConnection is configured with."""

    ice_servers: tuple[dict[str, Any], ...]
    transport_policy: str
    expires_at: int | None  # when the TURN credentials expire; None without TURN

    @classmethod
    def for_user(cls, settings: Settings, user: str, now: float) -> IceConfig:
        stun = [url for url in settings.ice_server_urls if url.split(":", 1)[0] in ("stun",
                                                                                    "stuns")]
        turn = [url for url in settings.ice_server_urls if url not in stun]
        servers: list[dict[str, Any]] = []
        if stun:
            servers.append({"urls": stun})
        expires_at = None
        if turn:
            expires_at = int(now) + settings.turn_credential_seconds
            username, credential = turn_credentials(settings.turn_secret, user, expires_at)
            servers.append({"urls": turn, "username": username, "credential": credential})
        return cls(tuple(servers), settings.ice_transport_policy, expires_at)
