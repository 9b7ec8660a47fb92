"""Sending one webhook request: aiohttp's HTTP client, with every address checked.

The client's resolver is `GuardedResolver`: it resolves a name (through `Lookup`, a seam
the tests fill with names of their own), checks every address with the TargetPolicy and
hands the client exactly those addresses to connect to, so no second lookup can answer
differently. Hosts that are IP addresses are checked before the request (the client does
not resolve them). Redirects are not followed, cookies not kept, proxies not used.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from .targets import RefusedAddress, TargetPolicy, literal_address

# host, port -> the IP addresses the name has.
Lookup = Callable[[str, int], Awaitable[list[str]]]
USER_AGENT = "supportbroker-webhooks/1"


async def system_lookup(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedResolver(AbstractResolver):
    """Resolves names to the addresses the policy allows; refuses the name if any is not."""

    def __init__(self, policy: TargetPolicy, lookup: Lookup) -> None:
        self._policy = policy
        self._lookup = lookup

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        try:
            found = await self._lookup(host, port)
        except OSError as exc:
            raise OSError(f"{host} could not be resolved ({exc})") from exc
        if not found:
            raise OSError(f"{host} has no address")
        results: list[ResolveResult] = []
        for text in found:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            self._policy.check_address(host, address)
            results.append(ResolveResult(
                hostname=host, host=str(address), port=port,
                family=socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                proto=0, flags=socket.AI_NUMERICHOST))
        return results

    async def close(self) -> None:
        pass


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """How one attempt went: the receiver's status code, or why there was none."""

    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class HttpTransport:
    """One aiohttp client session for every endpoint of this node."""

    def __init__(self, policy: TargetPolicy, *, timeout: float, per_host: int,
                 lookup: Lookup | None = None) -> None:
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._resolver = GuardedResolver(policy, lookup or system_lookup)
        self._per_host = per_host
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=self._resolver, use_dns_cache=False,
                                             limit=0, limit_per_host=self._per_host)
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
                headers={"User-Agent": USER_AGENT})
        return self._session

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Reply:
        try:
            address = literal_address(urlsplit(url).hostname or "")
            if address is not None:
                self._policy.check_address(str(address), address)
            async with self._client().post(
                    url, data=body, allow_redirects=False, timeout=self._timeout,
                    headers={**headers, "Content-Type": "application/json"}) as response:
                status = response.status
                if 300 <= status < 400:
                    where = response.headers.get("Location", "")[:200]
                    return Reply(status, f"redirect to {where!r} not followed")
                return Reply(status, None if 200 <= status < 300 else f"HTTP {status}")
        except RefusedAddress as refused:
            return Reply(None, str(refused))
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, RefusedAddress):
                return Reply(None, str(exc.os_error))
            return Reply(None, f"could not connect ({exc.os_error})"[:300])
        except TimeoutError:
            return Reply(None, f"no answer within {self._timeout.total:g} s")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return Reply(None, f"{type(exc).__name__}: {exc}"[:300])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
