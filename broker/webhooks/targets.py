"""Where webhooks may go: https URLs (http only to hosts an admin allows), and never to an
address inside the broker's own networks unless a setting allows it.

A webhook is a request the broker makes on an admin's behalf to a URL the admin typed; an
attacker who gets an admin to register (or to keep) a URL would otherwise reach what only
the broker can: its loopback services, the private network, a cloud's metadata address
(169.254.169.254). So every address a request would go to is checked: the URL's host when
it is an IP address, and every address a name resolves to *when the request is sent*,
with the connection then made to exactly the checked addresses (a name that resolved to
a public address at registration and to 127.0.0.1 later, DNS rebinding, is refused then).
An IP address must be written canonically (``127.0.0.1``, ``[::1]``): ``127.1``,
``2130706433`` or ``0177.0.0.1`` are refused, as resolvers read them in different ways.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from urllib.parse import urlsplit

from ..errors import InvalidInput
from .model import MAX_URL_LENGTH

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedAddress(OSError):
    """A target address the policy does not allow (an OSError: the HTTP client reports
    it as a failed connection, and nothing is sent)."""


@dataclasses.dataclass(frozen=True, slots=True)
class TargetPolicy:
    http_hosts: frozenset[str] = frozenset()
    allow_private: bool = False

    def check_url(self, url: str) -> str:
        """The URL if it may be registered (its form, and its host if an IP address);
        InvalidInput otherwise. Names are checked when each request is sent."""
        if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
            raise _invalid(f"url must be an https:// URL of at most {MAX_URL_LENGTH} "
                           "characters.")
        try:
            parts = urlsplit(url)
            host, _ = parts.hostname, parts.port
        except ValueError:
            raise _invalid("url is not a valid URL.") from None
        if parts.scheme not in ("https", "http") or not host:
            raise _invalid("url must be an https:// URL.")
        if parts.username is not None or parts.password is not None:
            raise _invalid("url must not hold a user name or password.")
        if parts.fragment or any(ord(c) < 33 or ord(c) == 127 for c in url):
            raise _invalid("url must not hold a #fragment, spaces or control characters.")
        if parts.scheme == "http" and host.rstrip(".") not in self.http_hosts:
            raise InvalidInput(f"Plain http:// is allowed only to the hosts in "
                               f"webhook_http_hosts; {host!r} is not one.",
                               code="http_not_allowed")
        try:
            address = literal_address(host)
            if address is not None:
                self.check_address(host, address)
        except RefusedAddress as refused:
            raise InvalidInput(str(refused), code="target_not_allowed") from None
        return url

    def check_address(self, host: str, address: Address) -> None:
        """Raise RefusedAddress unless requests may go to `address` (which `host` named)."""
        if self.allow_private:
            return
        why = _not_public(address)
        if why is not None:
            raise RefusedAddress(f"{host} is {address}, a {why} address: refused")


def literal_address(host: str) -> Address | None:
    """The IP address a URL's host is, or None for a name. A host that an HTTP client
    would take for an address without resolving it, but that is not a canonical address,
    is refused."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0] if ":" in host else host)
    except ValueError:
        pass
    if ":" in host or host.rstrip(".").replace(".", "").isdigit() or _looks_numeric(host):
        raise RefusedAddress(f"{host!r} is not an IP address in canonical form: refused")
    return None


def _looks_numeric(host: str) -> bool:
    """Hexadecimal or octal parts (``0x7f.0.0.1``): resolvers read these as addresses."""
    labels = host.rstrip(".").split(".")
    return all(label.lower().startswith("0x") or label.isdigit() for label in labels)


def _not_public(address: Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return _not_public(embedded)
        if address.teredo is not None:
            return "Teredo"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    if address.is_multicast or address.is_unspecified or address.is_reserved \
            or not address.is_global:
        return "non-public"
    return None


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_url")
