"""A software authenticator for the HTTP tests of passkeys: an ES256 key that answers the
broker's WebAuthn options as a browser with a platform authenticator would (attestation
"none"), so registration, sign-in, replay and forgery are tested without a browser."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import bytes_to_base64url

_PRESENT, _VERIFIED, _ATTESTED = 0x01, 0x04, 0x40


class SoftAuthenticator:
    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.count = 0

    def _cose(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge,
                           "origin": origin or self.origin, "crossOrigin": False}).encode()

    def register(self, options: dict[str, Any]) -> str:
        client_data = self._client_data("webauthn.create", options["challenge"], None)
        auth_data = (hashlib.sha256(options["rp"]["id"].encode()).digest()
                     + bytes([_PRESENT | _VERIFIED | _ATTESTED]) + struct.pack(">I", 0)
                     + bytes(16) + struct.pack(">H", len(self.credential_id))
                     + self.credential_id + self._cose())
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return self._answer({"clientDataJSON": bytes_to_base64url(client_data),
                             "attestationObject": bytes_to_base64url(attestation)})

    def sign(self, options: dict[str, Any], *, verified: bool = True,
             origin: str | None = None) -> str:
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        self.count += 1
        auth_data = (hashlib.sha256(options["rpId"].encode()).digest()
                     + bytes([_PRESENT | (_VERIFIED if verified else 0)])
                     + struct.pack(">I", self.count))
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                  ec.ECDSA(hashes.SHA256()))
        return self._answer({"clientDataJSON": bytes_to_base64url(client_data),
                             "authenticatorData": bytes_to_base64url(auth_data),
                             "signature": bytes_to_base64url(signature)})

    @property
    def credential_b64(self) -> str:
        return bytes_to_base64url(self.credential_id)

    def _answer(self, response: dict[str, str]) -> str:
        credential_id = self.credential_b64
        return json.dumps({"id": credential_id, "rawId": credential_id, "type": "public-key",
                           "response": response, "clientExtensionResults": {}})
