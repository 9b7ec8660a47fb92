"""Rate limits: growing lockouts against guessing, token buckets against floods."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hmac
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from .clock import Clock
from .errors import RateLimited
from .hashing import Hasher

log = logging.getLogger(__name__)

FLOOD_MESSAGE = "Too many messages; slow down."


@dataclasses.dataclass(slots=True)
class _Record:
    failures: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


class Attempt:
    """One guarded attempt; call `fail()` if it was a failed guess."""

    def __init__(self) -> None:
        self.failed = False

    def fail(self) -> None:
        self.failed = True


@dataclasses.dataclass(slots=True)
class _Gate:
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    users: int = 0


class Guesses(Protocol):
    """What the edge needs of a guessing limit: `GuessLimiter` on one node, and
    `broker.redislimits.RedisGuessLimiter` (the same rules, counted in Redis) on several."""

    def attempt(self, client: str, *,
                include_global: bool = True) -> AbstractAsyncContextManager[Attempt]: ...


@dataclasses.dataclass(frozen=True, slots=True)
class GuessPolicy:
    """The numbers of a guessing limit; see `GuessLimiter`."""

    free: int
    base_delay: float
    max_delay: float
    global_per_minute: int | None

    def delay(self, over: int) -> float:
        """The lockout after the `over`-th failure beyond the free ones (or global trip)."""
        return float(min(self.base_delay * 2 ** min(over - 1, 60), self.max_delay))


class GuessLimiter:
    """Lockouts that double with every failure past a free allowance, per client and globally.

    Per client: `free` failures cost nothing; failure number free+k locks the client for
    base * 2**(k-1) seconds, at most `max_delay`. A client quiet for `max_delay` starts over.
    Globally: more than `global_per_minute` failures within a minute lock everyone out,
    for a delay that doubles each time the global limit trips again before it has recovered.
    Counts live in this process; `broker.redislimits` shares them between nodes.
    """

    def __init__(self, clock: Clock, *, free: int, base_delay: float, max_delay: float,
                 global_per_minute: int | None, max_clients: int = 100_000) -> None:
        self._clock = clock
        self.policy = GuessPolicy(free, base_delay, max_delay, global_per_minute)
        self._max_clients = max_clients
        self._clients: collections.OrderedDict[str, _Record] = collections.OrderedDict()
        self._recent: collections.deque[float] = collections.deque()
        self._global = _Record()
        self._gates: dict[str, _Gate] = {}

    def check(self, client: str, *, include_global: bool = True) -> None:
        """Raise RateLimited if `client` (or, with include_global, everyone) must wait."""
        now = self._clock.now()
        record = self._clients.get(client)
        waits = [self._global.locked_until - now if include_global else 0.0]
        if record is not None:
            waits.append(record.locked_until - now)
        wait = max(waits)
        if wait > 0:
            raise RateLimited(wait)

    @contextlib.asynccontextmanager
    async def turn(self, client: str) -> AsyncIterator[None]:
        """This process's attempts for `client`, one at a time (the others wait)."""
        gate = self._gates.setdefault(client, _Gate())
        gate.users += 1
        try:
            async with gate.lock:
                yield
        finally:
            gate.users -= 1
            if gate.users == 0:
                self._gates.pop(client, None)

    @contextlib.asynccontextmanager
    async def attempt(self, client: str, *,
                      include_global: bool = True) -> AsyncIterator[Attempt]:
        """Guard one attempt. A client's attempts run one at a time, each checked only after
        the previous one was counted, so concurrent guesses cannot share a check; honest
        simultaneous attempts (an office behind one address) just wait their turn."""
        async with self.turn(client):
            self.check(client, include_global=include_global)
            outcome = Attempt()
            try:
                yield outcome
            finally:  # a failed guess usually leaves by raising
                if outcome.failed:
                    self.failure(client, include_global=include_global)

    def failure(self, client: str, *, include_global: bool = True) -> None:
        now = self._clock.now()
        policy = self.policy
        record = self._clients.pop(client, None) or _Record()
        if now - max(record.last_failure, record.locked_until) > policy.max_delay:
            record = _Record()
        record.failures += 1
        record.last_failure = now
        over = record.failures - policy.free
        if over > 0:
            record.locked_until = now + policy.delay(over)
            log_lockout(client, record.locked_until - now, record.failures)
        self._clients[client] = record
        while len(self._clients) > self._max_clients:
            self._clients.popitem(last=False)
        if include_global:
            self._global_failure(now)

    def _global_failure(self, now: float) -> None:
        limit = self.policy.global_per_minute
        if limit is None:
            return
        self._recent.append(now)
        while self._recent and self._recent[0] <= now - 60:
            self._recent.popleft()
        if len(self._recent) > limit and now >= self._global.locked_until:
            if now - self._global.locked_until > self.policy.max_delay:
                self._global.failures = 0
            self._global.failures += 1
            self._global.last_failure = now
            self._global.locked_until = now + self.policy.delay(self._global.failures)
            self._recent.clear()
            log_global_lockout(self._global.locked_until - now)


class PasswordGuesses:
    """Wrong passwords, limited per client address and per account.

    Per address alone, an attacker with many addresses gets many guesses at one account;
    so every attempt also counts against the account it names (its email, whether or not
    a technician has it, so the answers reveal nothing). The account's limit is a delay,
    not a lockout for its technician: a browser that has logged in to the account before
    holds a token that counts its attempts under its own name instead, so guesses from
    elsewhere never delay the technician at their usual browser, and elsewhere the right
    password works as soon as the delay is over. Account names are counted as keyed
    hashes: a password typed into the email field never reaches a log line or Redis.
    """

    def __init__(self, by_address: Guesses, by_account: Guesses, hasher: Hasher) -> None:
        self._by_address = by_address
        self._by_account = by_account
        self._hasher = hasher

    @contextlib.asynccontextmanager
    async def attempt(self, client: str, email: str,
                      browser: str | None = None) -> AsyncIterator[Attempt]:
        """Guard one login attempt from `client` with `email`; `browser` is the token
        that browser got at its last login here, if any (see `browser_token`)."""
        account = self._account(email)
        async with self._by_address.attempt(client) as by_address, \
                self._by_account.attempt(self._known(browser, account) or account,
                                         include_global=False) as by_account:
            outcome = Attempt()
            try:
                yield outcome
            finally:
                if outcome.failed:
                    by_address.fail()
                    by_account.fail()

    def browser_token(self, email: str) -> str:
        """For a browser whose password for `email` was right: its attempts at that
        account count apart from everyone else's from now on."""
        nonce = secrets.token_urlsafe(12)
        return f"{nonce}.{self._mac(nonce, self._account(email))}"

    def _account(self, email: str) -> str:
        return "account:" + self._hasher.hash("login-account", email.strip().lower())[:32]

    def _known(self, token: str | None, account: str) -> str | None:
        nonce, _, mac = (token or "").partition(".")
        if nonce and mac and hmac.compare_digest(mac.encode(),
                                                 self._mac(nonce, account).encode()):
            return f"browser:{nonce}"
        return None

    def _mac(self, nonce: str, account: str) -> str:
        return self._hasher.hash("login-browser", f"{nonce}\x00{account}")


def log_lockout(client: str, seconds: float, failures: int) -> None:
    log.warning("client %s locked out for %.0f s after %d failures", client, seconds, failures)


def log_global_lockout(seconds: float) -> None:
    log.warning("global guessing limit reached: locked for %.0f s", seconds)


class TokenBucket:
    """`burst` actions at once, refilled at `rate` per second."""

    def __init__(self, clock: Clock, *, rate: float, burst: int) -> None:
        self._clock = clock
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = clock.now()

    def take(self) -> None:
        now = self._clock.now()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1:
            raise RateLimited((1 - self._tokens) / self._rate, FLOOD_MESSAGE)
        self._tokens -= 1


class Floods(Protocol):
    """Token buckets by key, against floods: `take` raises RateLimited when the key's
    bucket is empty. `LocalFloods` counts on this node, `broker.redislimits.RedisFloods`
    for all nodes."""

    async def take(self, key: str) -> None: ...


class KeyedBuckets:
    """One TokenBucket per key (e.g. per session participant), the least recently used
    forgotten beyond `max_keys`, so reconnecting does not reset anyone's allowance."""

    def __init__(self, clock: Clock, *, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._rate = rate
        self._burst = burst
        self._max = max_keys
        self._buckets: collections.OrderedDict[str, TokenBucket] = collections.OrderedDict()

    def take(self, key: str) -> None:
        bucket = self._buckets.pop(key, None) or TokenBucket(
            self._clock, rate=self._rate, burst=self._burst)
        self._buckets[key] = bucket
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        bucket.take()


class LocalFloods:
    """`Floods` counted in this process (one node)."""

    def __init__(self, clock: Clock, *, rate: float, burst: int) -> None:
        self.buckets = KeyedBuckets(clock, rate=rate, burst=burst)

    async def take(self, key: str) -> None:
        self.buckets.take(key)
