"""The OpenID Connect relying party: the authorization code flow with PKCE, `state` and
`nonce`, and the ID token checked as OpenID Connect Core 1.0, 3.1.3.7 says.

Authlib makes the random values and the PKCE challenge; its JOSE library (joserfc)
verifies the ID token's signature with the provider's published keys and its claims:
`iss` is the configured issuer, `aud` holds our client id (and with several audiences
`azp` is ours), `exp` has not passed and `iat` is there (a minute of clock skew
allowed), `nonce` is the one this browser's sign-in sent, `sub` is there. The provider's
discovery document and keys are fetched once and kept (the keys again when an ID token
names a key they lack, as after a rotation).
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlencode

import aiohttp
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from ..clock import Clock
from ..errors import Unauthenticated
from ..settings import Settings

LEEWAY_SECONDS = 60
_TIMEOUT = aiohttp.ClientTimeout(total=15)
# Claims UserInfo may not change: they were checked in the ID token.
_REGISTERED = frozenset({"iss", "sub", "aud", "exp", "iat", "nonce", "azp", "auth_time"})
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


class SignOnRefused(Unauthenticated):
    """A single sign-on that cannot go on. `code` says why (docs/api.md, Pages)."""

    code = "sso_refused"


@dataclasses.dataclass(frozen=True, slots=True)
class Started:
    """A sign-in on its way to the provider: where to send the browser, and what this
    browser must keep (in its encrypted cookie) until it comes back."""

    url: str
    state: str
    nonce: str
    verifier: str


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in."""

    subject: str
    email: str
    name: str
    groups: tuple[str, ...]


class OidcClient:
    """The broker as a client of one OpenID provider."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None

    async def start(self, redirect_uri: str) -> Started:
        metadata = await self._discover()
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        query = urlencode({
            "response_type": "code", "client_id": self._settings.oidc_client_id,
            "redirect_uri": redirect_uri, "scope": "openid email profile groups"
            if "groups" in metadata.get("scopes_supported", []) else "openid email profile",
            "state": state, "nonce": nonce, "code_challenge_method": "S256",
            "code_challenge": create_s256_code_challenge(verifier)})
        return Started(f"{metadata['authorization_endpoint']}?{query}", state, nonce, verifier)

    async def finish(self, code: str, redirect_uri: str, verifier: str,
                     nonce: str) -> Identity:
        """Exchange the code (once: a provider refuses a used one) and check the ID token."""
        metadata = await self._discover()
        settings = self._settings
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as http:
            try:
                async with http.post(metadata["token_endpoint"], data={
                        "grant_type": "authorization_code", "code": code,
                        "redirect_uri": redirect_uri, "code_verifier": verifier},
                        auth=aiohttp.BasicAuth(settings.oidc_client_id,
                                               settings.oidc_client_secret)) as response:
                    answer = await response.json(content_type=None)
                    accepted = response.status == 200
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise SignOnRefused("The identity provider could not be reached.",
                                    code="sso_provider") from exc
        if not accepted or not isinstance(answer, dict) or "id_token" not in answer:
            raise SignOnRefused("The identity provider did not accept the sign-in; its "
                                "code may have been used already.", code="sso_code")
        claims = await self._verified(str(answer["id_token"]), nonce)
        if settings.oidc_email_claim not in claims and "userinfo_endpoint" in metadata:
            # Many providers put the scopes' claims in the UserInfo answer only.
            claims.update(await self._user_info(metadata["userinfo_endpoint"],
                                                str(answer.get("access_token", "")),
                                                str(claims["sub"])))
        email = claims.get(settings.oidc_email_claim)
        if not isinstance(email, str) or "@" not in email or (
                settings.oidc_email_claim == "email" and claims.get("email_verified") is False):
            raise SignOnRefused("The identity provider named no verified email address.",
                                code="sso_no_email")
        groups = claims.get(settings.oidc_groups_claim) or []
        return Identity(str(claims["sub"]), email.strip().lower(),
                        str(claims.get("name") or email.split("@")[0]),
                        tuple(g for g in groups if isinstance(g, str))
                        if isinstance(groups, list) else ())

    async def _verified(self, id_token: str, nonce: str) -> dict[str, Any]:
        settings = self._settings
        try:
            try:
                token = jwt.decode(id_token, await self._key_set(), algorithms=_ALGORITHMS)
            except JoseError:  # perhaps a key the provider rotated in since we fetched
                token = jwt.decode(id_token, await self._key_set(refresh=True),
                                   algorithms=_ALGORITHMS)
            claims = dict(token.claims)
            JWTClaimsRegistry(
                now=int(self._clock.now()), leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": await self._issuer()},
                aud={"essential": True, "value": settings.oidc_client_id},
                sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
                nonce={"essential": True, "value": nonce}).validate(claims)
        except (JoseError, ValueError) as exc:
            raise SignOnRefused(f"The ID token is not valid: {exc}",
                                code="sso_id_token") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != settings.oidc_client_id:
            raise SignOnRefused("The ID token is for another party (azp).",
                                code="sso_id_token")
        return claims

    async def _user_info(self, endpoint: str, access_token: str,
                         subject: str) -> dict[str, Any]:
        """The UserInfo claims; their `sub` must be the ID token's (Core 5.3.2)."""
        found = await _get_json(endpoint, headers={"Authorization": f"Bearer {access_token}"})
        if found.get("sub") != subject:
            raise SignOnRefused("The UserInfo answer is about someone else.",
                                code="sso_id_token")
        return {k: v for k, v in found.items() if k not in _REGISTERED}

    async def _issuer(self) -> str:
        return str((await self._discover())["issuer"])

    async def _discover(self) -> dict[str, Any]:
        if self._metadata is None:
            issuer = self._settings.oidc_issuer.rstrip("/")
            found = await _get_json(f"{issuer}/.well-known/openid-configuration")
            if found.get("issuer", "").rstrip("/") != issuer:
                raise SignOnRefused("The provider's discovery document names another "
                                    "issuer.", code="sso_provider")
            self._metadata = found
        return self._metadata

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            jwks_uri = (await self._discover())["jwks_uri"]
            self._keys = KeySet.import_key_set(await _get_json(jwks_uri))  # type: ignore[arg-type]
        return self._keys


async def _get_json(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    try:
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as http, http.get(
                url, headers=headers) as response:
            response.raise_for_status()
            found = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise SignOnRefused(f"The identity provider could not be reached ({url}).",
                            code="sso_provider") from exc
    if not isinstance(found, dict):
        raise SignOnRefused("The identity provider sent no JSON object.", code="sso_provider")
    return found
