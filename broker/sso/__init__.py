"""Single sign-on with OpenID Connect: the relying party (oidc) and who it signs in
(signon). docs/security.md and docs/configuration.md describe it."""

from .oidc import Identity, OidcClient, SignOnRefused, Started
from .signon import SignOn

__all__ = ["Identity", "OidcClient", "SignOn", "SignOnRefused", "Started"]
