"""Signatures per the Standard Webhooks specification.

Each request carries ``webhook-id`` (the event's id, the same on every retry),
``webhook-timestamp`` (seconds since the epoch, when this attempt was signed) and
``webhook-signature``: ``v1,<base64 of HMAC-SHA256 over "id.timestamp.body">``, keyed
with the base64-decoded part of the endpoint's ``whsec_`` secret. During a rotation's grace
period the header holds two signatures, separated by a space, new secret first: a
receiver that knows either one verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
_SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    if not secret.startswith(PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    key = base64.b64decode(secret[len(PREFIX):])
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(keys: list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with each of `keys` (newest first)."""
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(sign(key, message_id, timestamp, body)
                                          for key in keys)}
