"""The guessing limits of `broker.ratelimit`, counted in Redis for all nodes at once.

With several nodes behind a proxy, each request may reach another node; counts kept in
each process would give an attacker N times the guesses. Here the per-client records, the
global minute window and the global lockout live in Redis, and two Lua scripts (each
atomic in Redis) apply exactly the rules of `GuessLimiter`: one checks the lockouts and
takes the client's turn, one counts a failure and gives the turn back. Times come from
the node's injected clock (the nodes' clocks must agree, as for their heartbeats), so
the figures of docs/security.md hold for the whole cluster.

A client's attempts run one at a time across the cluster: on each node they queue as on
one node (`GuessLimiter.turn`), and the one at the front takes the client's turn in
Redis, a key that expires by itself after TURN_SECONDS if its node dies meanwhile.

If Redis cannot be reached, a node does not refuse every key and login: it falls back to
its own in-memory `GuessLimiter` (fail open to per-node limits) until Redis answers again,
and logs that it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from .clock import Clock
from .errors import RateLimited
from .ratelimit import (
    FLOOD_MESSAGE,
    Attempt,
    GuessLimiter,
    LocalFloods,
    log_global_lockout,
    log_lockout,
)

log = logging.getLogger(__name__)

# How long one attempt may hold its client's turn before the turn lapses by itself.
TURN_SECONDS = 10.0
# How long an attempt waits for its turn while other nodes hold it, before a 429.
TURN_WAIT_SECONDS = 30.0
# How long a single call to Redis may take before the node falls back to its own counts.
REDIS_SECONDS = 2.0
_ERRORS = (RedisError, OSError, asyncio.TimeoutError)

# Records are hashes of f (failures), l (locked until) and t (last failure); times are
# written with %.17g, so they come back exactly as the clock gave them.
_COMMON = """
local function num(key, field)
  return tonumber(redis.call('HGET', key, field) or '0')
end
local function fmt(x) return string.format('%.17g', x) end
"""

# KEYS: client record, global record, client's turn. ARGV: now, include_global (1/0),
# turn token, turn milliseconds. -> {'locked', seconds} | {'busy'} | {'ok'}
_TAKE_TURN = _COMMON + """
local now = tonumber(ARGV[1])
local wait = 0
if ARGV[2] == '1' then wait = num(KEYS[2], 'l') - now end
local own = num(KEYS[1], 'l') - now
if own > wait then wait = own end
if wait > 0 then return {'locked', fmt(wait)} end
if redis.call('SET', KEYS[3], ARGV[3], 'NX', 'PX', ARGV[4]) then return {'ok'} end
return {'busy'}
"""

# KEYS: client record, global record, global window (a list of failure times), client's
# turn. ARGV: now, free, base delay, max delay, global limit (-1: none), include_global
# (1/0), turn token, failed (1, or 0 to give the turn back without counting anything).
# -> {failures, client lockout seconds, global lockout seconds}
_FINISH = _COMMON + """
local now = tonumber(ARGV[1])
local free, base, max = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
local function delay(over)
  local d = base * 2 ^ math.min(over - 1, 60)
  return math.min(d, max)
end
local function ms(seconds) return math.ceil((seconds + 60) * 1000) end
local result = {'0', '0', '0'}
if ARGV[8] == '1' then
  local f, l, t = num(KEYS[1], 'f'), num(KEYS[1], 'l'), num(KEYS[1], 't')
  if now - math.max(t, l) > max then f, l, t = 0, 0, 0 end
  f, t = f + 1, now
  if f - free > 0 then
    l = now + delay(f - free)
    result[2] = fmt(l - now)
  end
  result[1] = tostring(f)
  redis.call('HSET', KEYS[1], 'f', f, 'l', fmt(l), 't', fmt(t))
  -- kept until the client would start over anyway
  redis.call('PEXPIRE', KEYS[1], ms(math.max(l, t) - now + max))
  if ARGV[6] == '1' and limit >= 0 then
    redis.call('RPUSH', KEYS[3], fmt(now))
    while true do
      local first = redis.call('LINDEX', KEYS[3], 0)
      if not first or tonumber(first) > now - 60 then break end
      redis.call('LPOP', KEYS[3])
    end
    -- only the newest limit+1 times can decide a trip
    redis.call('LTRIM', KEYS[3], -(limit + 1), -1)
    redis.call('PEXPIRE', KEYS[3], ms(60))
    local gf, gl = num(KEYS[2], 'f'), num(KEYS[2], 'l')
    if redis.call('LLEN', KEYS[3]) > limit and now >= gl then
      if now - gl > max then gf = 0 end
      gf = gf + 1
      gl = now + delay(gf)
      redis.call('HSET', KEYS[2], 'f', gf, 'l', fmt(gl), 't', fmt(now))
      redis.call('PEXPIRE', KEYS[2], ms(gl - now + max))
      redis.call('DEL', KEYS[3])
      result[3] = fmt(gl - now)
    end
  end
end
if ARGV[7] ~= '' and redis.call('GET', KEYS[4]) == ARGV[7] then
  redis.call('DEL', KEYS[4])
end
return result
"""

# KEYS: the bucket (a hash of k, tokens, and s, when they were counted). ARGV: now, rate per
# second, burst. -> '0' (a token taken) | seconds until one is there
_TAKE_TOKEN = _COMMON + """
local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'k') or ARGV[3])
local stamp = tonumber(redis.call('HGET', KEYS[1], 's') or ARGV[1])
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = '0'
if tokens < 1 then wait = fmt((1 - tokens) / rate) else tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 'k', fmt(tokens), 's', fmt(now))
-- a full bucket is the same as none
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return wait
"""


class RedisGuessLimiter:
    """`GuessLimiter`'s rules with the counts in Redis under `prefix`; `local` (the same
    rules in memory) serialises this node's attempts and stands in while Redis is away."""

    def __init__(self, client: redis.Redis, prefix: str, clock: Clock,
                 local: GuessLimiter) -> None:
        self._clock = clock
        self._local = local
        self._policy = local.policy
        self._prefix = prefix
        self._take_turn = client.register_script(_TAKE_TURN)
        self._finish = client.register_script(_FINISH)
        self._degraded = False

    @contextlib.asynccontextmanager
    async def attempt(self, client: str, *,
                      include_global: bool = True) -> AsyncIterator[Attempt]:
        """As `GuessLimiter.attempt`, for the whole cluster."""
        async with self._local.turn(client):
            token = await self._turn(client, include_global)
            if token is None:
                self._local.check(client, include_global=include_global)
            outcome = Attempt()
            try:
                yield outcome
            finally:
                if token is None:
                    if outcome.failed:
                        self._local.failure(client, include_global=include_global)
                else:
                    await self._done(client, include_global, token, outcome.failed)

    def _keys(self, client: str) -> list[str]:
        return [f"{self._prefix}client:{client}", f"{self._prefix}global",
                f"{self._prefix}recent", f"{self._prefix}turn:{client}"]

    async def _turn(self, client: str, include_global: bool) -> str | None:
        """Check the lockouts and take the client's turn: its token, or None if Redis
        is unreachable (the caller uses the node's own counts)."""
        keys = self._keys(client)
        token = secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TURN_WAIT_SECONDS
        pause = 0.005
        while True:
            try:
                verdict = await self._call(self._take_turn, [keys[0], keys[1], keys[3]], [
                    repr(self._clock.now()), int(include_global), token,
                    int(TURN_SECONDS * 1000)])
            except _ERRORS as error:
                self._fall_back(error)
                return None
            self._recovered()
            if verdict[0] == b"locked":
                raise RateLimited(float(verdict[1]))
            if verdict[0] == b"ok":
                return token
            if loop.time() >= deadline:
                raise RateLimited(1.0, "Too many attempts at once; try again.")
            await asyncio.sleep(pause)  # another node is trying this client's attempt
            pause = min(pause * 2, 0.1)

    async def _done(self, client: str, include_global: bool, token: str,
                    failed: bool) -> None:
        """Count the failure (if it was one) and give the turn back."""
        policy = self._policy
        limit = -1 if policy.global_per_minute is None else policy.global_per_minute
        try:
            failures, locked, tripped = await self._call(self._finish, self._keys(client), [
                repr(self._clock.now()), policy.free, repr(policy.base_delay),
                repr(policy.max_delay), limit, int(include_global), token, int(failed)])
        except _ERRORS as error:
            self._fall_back(error)
            if failed:
                self._local.failure(client, include_global=include_global)
            return  # the turn lapses by itself
        if float(locked) > 0:
            log_lockout(client, float(locked), int(failures))
        if float(tripped) > 0:
            log_global_lockout(float(tripped))

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> list[bytes]:
        async with asyncio.timeout(REDIS_SECONDS):
            return list(await script(keys=keys, args=args))

    def _fall_back(self, error: BaseException) -> None:
        if not self._degraded:
            self._degraded = True
            log.warning("guessing limits cannot reach Redis (%s: %s); counting on this node "
                        "only until it answers again", type(error).__name__, error)

    def _recovered(self) -> None:
        if self._degraded:
            self._degraded = False
            log.info("guessing limits reach Redis again; counting for all nodes")


class RedisFloods:
    """`Floods` counted in Redis under `prefix` for all nodes; `local` (the same buckets in
    memory) stands in while Redis is away, as for the guessing limits."""

    def __init__(self, client: redis.Redis, prefix: str, clock: Clock, local: LocalFloods,
                 *, rate: float, burst: int) -> None:
        self._prefix = prefix
        self._clock = clock
        self._local = local
        self._rate = rate
        self._burst = burst
        self._take = client.register_script(_TAKE_TOKEN)
        self._degraded = False

    async def take(self, key: str) -> None:
        try:
            async with asyncio.timeout(REDIS_SECONDS):
                wait = float(await self._take(keys=[self._prefix + key], args=[
                    f"{self._clock.now():.17g}", repr(self._rate), self._burst]))
        except _ERRORS as error:
            if not self._degraded:
                self._degraded = True
                log.warning("flood limits cannot reach Redis (%s: %s); counting on this "
                            "node only until it answers again", type(error).__name__, error)
            await self._local.take(key)
            return
        if self._degraded:
            self._degraded = False
            log.info("flood limits reach Redis again; counting for all nodes")
        if wait > 0:
            raise RateLimited(wait, FLOOD_MESSAGE)
