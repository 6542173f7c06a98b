"""Shared state in Redis, so several gateway processes enforce one limit, budget and breaker.

Every deciding operation is one Lua script, atomic across processes. Scripts read the Redis
server's clock (TIME), so processes with skewed clocks agree on window boundaries. Each script
touches exactly the keys it is given, as Redis requires.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from trimtab.state.base import BreakerCounts, Reservation, WindowDecision
from trimtab.state.errors import StateLost, StateUnavailable
from trimtab.state.memory import BREAKER_OPEN_GRACE_S, WINDOW_EPSILON
from trimtab.state.urls import redact_url

_FMT = "local function fmt(x) return string.format('%.17g', x) end\n"

# KEYS[1] window hash (field: window number -> total); ARGV mode, amount, limit, window_s.
# Returns {allowed, used, retry_after}. The retry arithmetic mirrors memory.window_retry_after.
_WINDOW = (
    _FMT
    + f"local eps = {WINDOW_EPSILON!r}\n"
    + """
local key, mode = KEYS[1], ARGV[1]
local amount, limit, window = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local id = math.floor(now / window)
local elapsed = now / window - id
local cur_f, prev_f = string.format('%d', id), string.format('%d', id - 1)
local got = redis.call('HMGET', key, cur_f, prev_f)
local current, previous = tonumber(got[1]) or 0, tonumber(got[2]) or 0
local used = current + previous * (1 - elapsed)
if mode == 'used' then return {'1', fmt(used), '0'} end
if mode == 'acquire' and used + amount - limit > eps * math.max(1, math.abs(limit)) then
  local retry
  local room = limit - amount - current
  if room >= 0 and previous > 0 then
    retry = math.max(1 - room / previous - elapsed, 0) * window
  else
    local rest = (1 - elapsed) * window
    if limit - amount < 0 or current <= 0 then
      retry = rest + window
    else
      retry = rest + math.max(1 - (limit - amount) / current, 0) * window
    end
  end
  return {'0', fmt(used), fmt(retry)}
end
redis.call('HINCRBYFLOAT', key, cur_f, ARGV[2])
if redis.call('HLEN', key) > 2 then
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if f ~= cur_f and f ~= prev_f then redis.call('HDEL', key, f) end
  end
end
redis.call('PEXPIRE', key, math.ceil(window * 2000))
return {'1', fmt(used + amount), '0'}
"""
)

# KEYS[1] budget hash; ARGV spent, ttl_ms.
_SEED = """
if redis.call('HSETNX', KEYS[1], 'spent', ARGV[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS[1] budget hash, KEYS[2] the seed marker; ARGV spent, ttl_ms. Raises the settled spend
# to at least ARGV[1] (never lowers it: other processes may have settled meanwhile).
_RAISE = (
    _FMT
    + """
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent')) or 0
if tonumber(ARGV[1]) > spent then redis.call('HSET', KEYS[1], 'spent', ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
"""
)

# KEYS[1] budget hash; ARGV delta, ttl_ms. Adds delta (may be negative) to the outstanding
# reservations, never below zero: a process holding its reservations again after Redis lost
# them, or releasing those that settled while Redis was away.
_HOLD = (
    _FMT
    + """
local left = (tonumber(redis.call('HGET', KEYS[1], 'reserved')) or 0) + tonumber(ARGV[1])
if left <= 1e-12 then left = 0 end
redis.call('HSET', KEYS[1], 'reserved', fmt(left))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
"""
)

# Budget scripts given a seed token (ARGV[4] not empty) first check that the seed marker
# (KEYS[2]) still holds it, and return {'lost'} without touching anything when it does not:
# Redis lost its data since this process seeded it (gone, or seeded again by another process
# that noticed first, which cannot have held this process's reservations).
_LOST_CHECK = """
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[4] then return {'lost', '0', '0'} end
"""

# KEYS[1] budget hash; ARGV amount, limit, ttl_ms. Returns {ok, spent, reserved}.
_RESERVE = (
    _FMT
    + _LOST_CHECK
    + """
local got = redis.call('HMGET', KEYS[1], 'spent', 'reserved')
local spent, reserved = tonumber(got[1]) or 0, tonumber(got[2]) or 0
if spent + reserved >= tonumber(ARGV[2]) then return {'0', fmt(spent), fmt(reserved)} end
reserved = tonumber(redis.call('HINCRBYFLOAT', KEYS[1], 'reserved', ARGV[1]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'1', fmt(spent), fmt(reserved)}
"""
)

# KEYS[1] budget hash; ARGV reserved, actual, ttl_ms. Returns {spent before, spent after}.
# Outstanding reservations never go negative (see memory._released).
_SETTLE = (
    _FMT
    + _LOST_CHECK
    + """
local got = redis.call('HMGET', KEYS[1], 'spent', 'reserved')
local before = tonumber(got[1]) or 0
local left = (tonumber(got[2]) or 0) - tonumber(ARGV[1])
if left <= 1e-12 then left = 0 end
local after = tonumber(redis.call('HINCRBYFLOAT', KEYS[1], 'spent', ARGV[2]))
redis.call('HSET', KEYS[1], 'reserved', fmt(left))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {fmt(before), fmt(after), '0'}
"""
)

# KEYS[1] counts hash (fields t<second>, f<second>); ARGV ok (1/0), window_s.
# Returns {total, failures} over the last ceil(window_s) whole seconds, this one included.
_RECORD = """
local key = KEYS[1]
local span = math.max(math.ceil(tonumber(ARGV[2])), 1)
local second = tonumber(redis.call('TIME')[1])
local s = string.format('%d', second)
redis.call('HINCRBY', key, 't' .. s, 1)
if ARGV[1] == '0' then redis.call('HINCRBY', key, 'f' .. s, 1) end
local total, failures = 0, 0
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do
  local f = all[i]
  if tonumber(string.sub(f, 2)) <= second - span then
    redis.call('HDEL', key, f)
  elseif string.sub(f, 1, 1) == 't' then
    total = total + tonumber(all[i + 1])
  else
    failures = failures + tonumber(all[i + 1])
  end
end
redis.call('PEXPIRE', key, (span + 1) * 1000)
return {total, failures}
"""

# KEYS[1] the caller's assignment; ARGV: mark, ttl_ms. The first mark wins; each use keeps it.
_ASSIGN = """
local seen = redis.call('GET', KEYS[1])
if seen then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return seen
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
"""

_COUNTER = """
local total = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return total
"""


def _ms(seconds: float) -> int:
    """Milliseconds for PX/PEXPIRE: at least 1."""
    return max(1, math.ceil(seconds * 1000))


class RedisState:
    """SharedState in Redis: one connection pool, one Lua script per decision."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "trimtab:",
        max_connections: int = 64,
        timeout_s: float = 2.0,
    ) -> None:
        self._url = url
        self._prefix = prefix
        # Blocking: under a burst, wait for a pooled connection instead of failing the request.
        # One retry covers a pooled connection that went stale (e.g. Redis restarted); more
        # would stall every request while Redis is down.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1),
        )
        self._redis: Redis = Redis.from_pool(pool)
        self._window = self._redis.register_script(_WINDOW)
        self._seed = self._redis.register_script(_SEED)
        self._reserve = self._redis.register_script(_RESERVE)
        self._settle = self._redis.register_script(_SETTLE)
        self._record = self._redis.register_script(_RECORD)
        self._assign = self._redis.register_script(_ASSIGN)
        self._raise = self._redis.register_script(_RAISE)
        self._hold = self._redis.register_script(_HOLD)
        self._counter = self._redis.register_script(_COUNTER)
        # set by mark_seeded: from then on the budget scripts report a lost seed (StateLost)
        self._token: str | None = None

    @property
    def url(self) -> str:
        """The Redis URL, password redacted."""
        return redact_url(self._url)

    async def start(self) -> None:
        """Nothing to do: connections open on first use (see ping)."""

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()

    async def ping(self) -> None:
        """Raise StateUnavailable when Redis does not answer."""
        with self._errors():
            await self._redis.ping()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (RedisError, OSError) as exc:
            raise StateUnavailable(
                f"shared state at {self.url} is unavailable: {type(exc).__name__}: {exc}"
            ) from exc

    async def _run(
        self, script: AsyncScript, key: str, args: Sequence[str | float], *more_keys: str
    ) -> Any:
        with self._errors():
            return await script(keys=[key, *more_keys], args=list(args))

    def _key(self, kind: str, key: str) -> str:
        return f"{self._prefix}{kind}:{key}"

    # -- rate limits -----------------------------------------------------------------------------

    async def window_acquire(
        self, key: str, amount: float, limit: float, window_s: float
    ) -> WindowDecision:
        """Add `amount` only if the window's total stays within `limit`."""
        allowed, used, retry = await self._run(
            self._window, self._key("window", key), ("acquire", amount, limit, window_s)
        )
        return WindowDecision(allowed == b"1", float(used), float(retry))

    async def window_add(self, key: str, amount: float, window_s: float) -> None:
        """Add unconditionally (e.g. tokens, known only after the call)."""
        await self._run(self._window, self._key("window", key), ("add", amount, 0, window_s))

    async def window_used(self, key: str, window_s: float) -> float:
        """The window's estimated total now."""
        _, used, _ = await self._run(
            self._window, self._key("window", key), ("used", 0, 0, window_s)
        )
        return float(used)

    # -- budgets ---------------------------------------------------------------------------------

    async def budget_seed(self, key: str, spent: float, ttl_s: float) -> None:
        """Set the period's settled spend if nothing is known of it yet."""
        await self._run(self._seed, self._key("budget", key), (spent, _ms(ttl_s)))

    async def budget_raise(self, key: str, spent: float, ttl_s: float) -> None:
        """Raise the period's settled spend to at least `spent` (re-seeding after a loss)."""
        await self._run(self._raise, self._key("budget", key), (spent, _ms(ttl_s)))

    async def budget_hold(self, key: str, delta: float, ttl_s: float) -> None:
        """Add `delta` to the outstanding reservations (never below zero), unchecked."""
        await self._run(self._hold, self._key("budget", key), (delta, _ms(ttl_s)))

    async def mark_seeded(self) -> None:
        """Write the seed marker (a new token), or take the one another process wrote: from
        now on a budget call that finds a different one raises StateLost instead of counting
        from what is left."""
        marker = self._key("seeded", "budgets")
        token = uuid.uuid4().hex
        with self._errors():
            if not await self._redis.set(marker, token, nx=True):
                found = await self._redis.get(marker)
                if found is None:  # gone again meanwhile
                    await self._redis.set(marker, token)
                else:
                    token = found.decode() if isinstance(found, bytes) else str(found)
        self._token = token

    async def seeded(self) -> bool:
        """Whether the seed marker still holds this process's token (True before the first
        mark_seeded)."""
        if self._token is None:
            return True
        with self._errors():
            found = await self._redis.get(self._key("seeded", "budgets"))
        return found is not None and found == self._token.encode()

    def _budget_args(self, *args: str | float) -> tuple[str | float, ...]:
        return (*args, self._token or "")

    async def budget_reserve(
        self, key: str, amount: float, limit: float, ttl_s: float
    ) -> Reservation:
        """Reserve `amount` if spent + reserved is still below `limit`."""
        ok, spent, reserved = await self._run(
            self._reserve,
            self._key("budget", key),
            self._budget_args(amount, limit, _ms(ttl_s)),
            self._key("seeded", "budgets"),
        )
        if ok == b"lost":
            raise StateLost(f"shared state at {self.url} lost the seeded budget spend")
        return Reservation(ok == b"1", float(spent), float(reserved))

    async def budget_settle(
        self, key: str, reserved: float, actual: float, ttl_s: float
    ) -> tuple[float, float]:
        """Release a reservation and add the actual cost: (spent before, spent after)."""
        before, after, _ = await self._run(
            self._settle,
            self._key("budget", key),
            self._budget_args(reserved, actual, _ms(ttl_s)),
            self._key("seeded", "budgets"),
        )
        if before == b"lost":
            raise StateLost(f"shared state at {self.url} lost the seeded budget spend")
        return float(before), float(after)

    async def budget_status(self, key: str) -> Reservation | None:
        """(spent, reserved) of a period, or None if never seeded or reserved; `ok` is True."""
        with self._errors():
            spent, reserved = await self._redis.hmget(
                self._key("budget", key), ["spent", "reserved"]
            )
        if spent is None and reserved is None:
            return None
        return Reservation(True, float(spent or 0), float(reserved or 0))

    # -- circuit breakers ------------------------------------------------------------------------

    async def breaker_record(self, key: str, ok: bool, window_s: float) -> BreakerCounts:
        """Count one outcome; return the counts in the last `window_s` (whole seconds)."""
        total, failures = await self._run(
            self._record, self._key("breaker:counts", key), ("1" if ok else "0", window_s)
        )
        return BreakerCounts(int(total), int(failures))

    async def breaker_open_until(self, key: str) -> float:
        """Epoch seconds until which the breaker is open; 0 when closed."""
        with self._errors():
            until = await self._redis.get(self._key("breaker:open", key))
        return 0.0 if until is None else float(until)

    async def breaker_trip(self, key: str, until: float) -> None:
        """Open the breaker until `until`; the next half-open period gets a fresh probe."""
        ttl = max(until - time.time(), 0.0) + BREAKER_OPEN_GRACE_S
        with self._errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(self._key("breaker:open", key), repr(until), px=_ms(ttl))
                pipe.delete(self._key("breaker:probe", key))
                await pipe.execute()

    async def breaker_claim_probe(self, key: str, hold_s: float) -> bool:
        """True for exactly one caller per `hold_s`: the half-open probe."""
        with self._errors():
            claimed = await self._redis.set(
                self._key("breaker:probe", key), b"1", nx=True, px=_ms(hold_s)
            )
        return bool(claimed)

    async def breaker_reset(self, key: str) -> None:
        """Close the breaker and forget its counts."""
        with self._errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                for kind in ("breaker:open", "breaker:probe", "breaker:counts"):
                    pipe.delete(self._key(kind, key))
                await pipe.execute()

    # -- response cache --------------------------------------------------------------------------

    async def cache_get(self, key: str) -> bytes | None:
        """The cached value, or None when missing or expired."""
        with self._errors():
            value = await self._redis.get(self._key("cache", key))
        # decode_responses is off, so values arrive as bytes; the str case only satisfies typing
        return value.encode() if isinstance(value, str) else value

    async def cache_set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store `value` for `ttl_s`."""
        with self._errors():
            await self._redis.set(self._key("cache", key), value, px=_ms(ttl_s))

    async def counter_add(self, key: str, amount: float, ttl_s: float) -> float:
        """Add `amount` and return the new total (one script: processes add atomically)."""
        total = await self._run(self._counter, self._key("counter", key), (amount, _ms(ttl_s)))
        return float(total)

    async def assign(self, rollout: str, caller: str, mark: bytes, ttl_s: float) -> bytes:
        """The first mark given for this caller in this rollout, kept `ttl_s` after its
        last use: one script, so two processes assigning the same caller at once agree."""
        kept = await self._run(
            self._assign, self._key("assign", f"{rollout}:{caller}"), (mark.decode(), _ms(ttl_s))
        )
        return kept.encode() if isinstance(kept, str) else bytes(kept)
