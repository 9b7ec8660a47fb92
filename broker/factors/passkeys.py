"""Passkeys (WebAuthn): registering them, and signing in with one, as the second factor
after a password or alone (a passkey that verified its user, by fingerprint, face or
PIN, is two factors by itself).

Each ceremony's challenge is stored (as a keyed hash) for 5 minutes and used up by the
answer, on whichever node it arrives: an answer cannot be replayed. The relying party is
the broker's public address (`public_url`): its host name is the RP ID, its origin the
only one accepted.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import webauthn
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ..audit import Action
from ..clock import Clock
from ..errors import InvalidInput, NotFound, Unauthenticated
from ..hashing import Hasher
from ..ratelimit import KeyedBuckets
from ..technicians import Technician
from .service import Factors
from .store import FactorStore

CHALLENGE_SECONDS = 300.0
# Sign-in options per client address (each stores a challenge): a burst, then one a second.
_OPTIONS_BURST, _OPTIONS_PER_SECOND = 20, 1.0
_REGISTER, _SIGN_IN = "register", "sign_in"


class PasskeyRejected(Unauthenticated):
    """The passkey's answer does not verify (or its challenge was used or expired)."""

    code = "passkey_rejected"


class Passkeys:
    def __init__(self, factors: Factors, store: FactorStore, hasher: Hasher,
                 clock: Clock, *, origin: str, name: str) -> None:
        self._factors = factors
        self._asked = KeyedBuckets(clock, rate=_OPTIONS_PER_SECOND, burst=_OPTIONS_BURST)
        self._store = store
        self._hasher = hasher
        parts = urlsplit(origin)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._rp_id = parts.hostname or "localhost"
        self._rp_name = name

    # -- registering ----------------------------------------------------------------------

    async def registration_options(self, technician: Technician,
                                   signed_in_at: float | None) -> str:
        self._factors.check_fresh(signed_in_at)
        options = webauthn.generate_registration_options(
            rp_id=self._rp_id, rp_name=self._rp_name, user_name=technician.email,
            user_id=self._user_handle(technician.id),
            user_display_name=technician.display_name,
            exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c))
                                 for c in await self._store.credential_ids(technician.id)],
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.PREFERRED))
        await self._remember(options.challenge, _REGISTER, technician.id)
        return webauthn.options_to_json(options)

    async def register(self, technician: Technician, credential: str, name: str,
                       signed_in_at: float | None) -> list[str]:
        """Store a new passkey; the recovery codes to show once (if it is the first factor
        and none are left), else []."""
        self._factors.check_fresh(signed_in_at)
        name = " ".join(name.split())[:100]
        if not name:
            raise InvalidInput("Give the passkey a name.", code="passkey_name_required")
        try:
            challenge = _challenge(parse_registration_credential_json(
                credential).response.client_data_json)
        except (WebAuthnException, ValueError, KeyError, TypeError) as error:
            raise PasskeyRejected("This is not a passkey's answer.") from error
        if not await self._store.take_challenge(self._hash(challenge), _REGISTER,
                                                technician.id):
            raise PasskeyRejected("The passkey took too long; try again.")
        try:
            verified = webauthn.verify_registration_response(
                credential=credential, expected_challenge=challenge,
                expected_rp_id=self._rp_id, expected_origin=self._origin)
        except WebAuthnException as error:
            raise PasskeyRejected("The passkey's answer does not verify.") from error
        fresh = await self._factors.codes_for_new_factor(technician)
        if not await self._store.add_passkey(
                technician.id, bytes_to_base64url(verified.credential_id),
                verified.credential_public_key, verified.sign_count, name,
                self._factors.hashes(technician.id, fresh)):
            raise PasskeyRejected("This passkey is registered already.")
        await self._factors.record(Action.FACTOR_ADDED, technician,
                                   {"kind": "passkey", "name": name})
        return fresh

    async def remove(self, technician: Technician, passkey_id: int,
                     signed_in_at: float | None) -> None:
        self._factors.check_fresh(signed_in_at)
        status = await self._factors.status(technician)
        if not status.totp and [p.id for p in status.passkeys] == [passkey_id]:
            await self._factors.keep_required(technician)
        name = await self._store.remove_passkey(technician.id, passkey_id)
        if name is None:
            raise NotFound("No such passkey.")
        await self._factors.record(Action.FACTOR_REMOVED, technician,
                                   {"kind": "passkey", "name": name})

    # -- signing in -----------------------------------------------------------------------

    async def sign_in_options(self, technician: Technician | None, client: str) -> str:
        """For `technician`'s second step (their passkeys), or (None) for signing in with
        a passkey alone, which must verify its user. RateLimited when `client` (an
        address) asks too often: each stores a challenge."""
        self._asked.take(client)
        allowed = [] if technician is None else [
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(c))
            for c in await self._store.credential_ids(technician.id)]
        options = webauthn.generate_authentication_options(
            rp_id=self._rp_id, allow_credentials=allowed,
            user_verification=UserVerificationRequirement.REQUIRED if technician is None
            else UserVerificationRequirement.PREFERRED)
        await self._remember(options.challenge, _SIGN_IN,
                             None if technician is None else technician.id)
        return webauthn.options_to_json(options)

    async def sign_in(self, credential: str, technician: Technician | None) -> int:
        """The id of the technician whose passkey answered."""
        try:
            parsed = parse_authentication_credential_json(credential)
            challenge = _challenge(parsed.response.client_data_json)
        except (WebAuthnException, ValueError, KeyError, TypeError) as error:
            raise PasskeyRejected("This is not a passkey's answer.") from error
        if not await self._store.take_challenge(
                self._hash(challenge), _SIGN_IN, None if technician is None else technician.id):
            raise PasskeyRejected("The passkey took too long; try again.")
        row = await self._store.passkey(bytes_to_base64url(parsed.raw_id))
        if row is None or (technician is not None and row.technician_id != technician.id):
            raise PasskeyRejected("This passkey is not registered here.")
        try:
            verified = webauthn.verify_authentication_response(
                credential=credential, expected_challenge=challenge,
                expected_rp_id=self._rp_id, expected_origin=self._origin,
                credential_public_key=row.public_key,
                credential_current_sign_count=row.sign_count,
                require_user_verification=technician is None)
        except WebAuthnException as error:
            raise PasskeyRejected("The passkey's answer does not verify.") from error
        if not await self._store.use_passkey(row.id, row.sign_count, verified.new_sign_count):
            raise PasskeyRejected("The passkey was used at the same moment elsewhere.")
        return row.technician_id

    # -- helpers ------------------------------------------------------------------------

    async def _remember(self, challenge: bytes, purpose: str,
                        technician_id: int | None) -> None:
        await self._store.add_challenge(self._hash(challenge), purpose, technician_id,
                                        CHALLENGE_SECONDS)

    def _hash(self, challenge: bytes) -> str:
        return self._hasher.hash("webauthn-challenge", bytes_to_base64url(challenge))

    def _user_handle(self, technician_id: int) -> bytes:
        """A stable handle that does not show the technician's id."""
        return bytes.fromhex(self._hasher.hash("webauthn-user", str(technician_id)))[:32]


def _challenge(client_data_json: bytes) -> bytes:
    return parse_client_data_json(client_data_json).challenge

