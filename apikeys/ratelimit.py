"""Per-key rate limits: GCRA (generic cell rate algorithm).

`rate_per_minute` sets the emission interval T = 60 s / rate; `burst` is how many requests may
arrive at once. Each bucket stores one number, its theoretical arrival time (TAT). A request at
`now` is allowed if TAT + T - burst·T <= now, and then TAT becomes max(TAT, now) + T. A call
with a key counts in two buckets, the key's and its account's, checked and updated together.

Production mode keeps TATs in Redis and runs the check as one Lua script (one round trip);
embedded mode keeps them in this process (a single-process development server).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings

REDIS_TIMEOUT_S = 0.5


class LimiterUnavailable(Exception):
    """The limiter's store is unreachable: refuse rather than let calls through unmetered."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rate_per_minute: int
    burst: int
    remaining: int  # of the burst
    retry_after_s: float  # 0 when allowed
    reset_after_s: float  # until the bucket is full again

    def headers(self, now: float) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.rate_per_minute),
            "X-RateLimit-Burst": str(self.burst),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(now + self.reset_after_s)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(math.ceil(self.retry_after_s))
        return headers


def _interval_us(rate_per_minute: int) -> int:
    return max(60_000_000 // max(rate_per_minute, 1), 1)


@dataclass(frozen=True)
class Bucket:
    """One GCRA bucket: its name in the store, its rate per minute and its burst."""

    name: str
    rate_per_minute: int
    burst: int

    @property
    def interval_us(self) -> int:
        return _interval_us(self.rate_per_minute)


def _decide(tats: list[int | None], now: int, buckets: list[Bucket]) -> tuple[Decision, list[int]]:
    """The GCRA step over several buckets at once, in microseconds; the Lua script below is
    the same, line for line. A request passes only if every bucket lets it through, and then
    counts in all of them; a refused request counts in none. The decision reported is the
    tightest bucket's: the refusing bucket that frees last, else the one with least left."""
    new_tats: list[int] = []
    tightest: tuple[int, int, int, int] | None = None  # (allowed, index, remaining, after)
    for index, (bucket, stored) in enumerate(zip(buckets, tats, strict=True)):
        interval = bucket.interval_us
        tat = max(stored if stored is not None else now, now)
        tolerance = interval * bucket.burst
        new_tat = tat + interval
        allow_at = new_tat - tolerance
        new_tats.append(new_tat)
        if allow_at > now:
            if tightest is None or tightest[0] == 1 or allow_at - now > tightest[3]:
                tightest = (0, index, tat - now, allow_at - now)
        elif tightest is None or tightest[0] == 1:
            remaining = (tolerance - (new_tat - now)) // interval
            if tightest is None or remaining < tightest[2]:
                tightest = (1, index, remaining, new_tat - now)
    assert tightest is not None
    allowed, index, value, after = tightest
    bucket = buckets[index]
    if not allowed:  # value: until the bucket is full again; after: until it admits one
        decision = Decision(
            False, bucket.rate_per_minute, bucket.burst, 0, after / 1e6, value / 1e6
        )
        return decision, [max(t if t is not None else now, now) for t in tats]
    decision = Decision(True, bucket.rate_per_minute, bucket.burst, value, 0, after / 1e6)
    return decision, new_tats


# KEYS: the buckets' TAT keys. ARGV: now, then interval and burst per bucket (µs). Returns
# {allowed, index (1-based), remaining or reset-after, retry-after or reset-after} in µs: the
# tightest bucket, as _decide. Integers throughout: Redis truncates Lua numbers on return, and
# µs since the epoch (~2^51) are still exact in Lua's doubles.
GCRA_LUA = """
local now = tonumber(ARGV[1])
local new_tats = {}
local allowed, index, value, after = nil, 0, 0, 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local tolerance = interval * burst
  local new_tat = tat + interval
  local allow_at = new_tat - tolerance
  new_tats[i] = new_tat
  if allow_at > now then
    if allowed == nil or allowed == 1 or allow_at - now > after then
      allowed, index, value, after = 0, i, tat - now, allow_at - now
    end
  elseif allowed == nil or allowed == 1 then
    local remaining = math.floor((tolerance - (new_tat - now)) / interval)
    if allowed == nil or remaining < value then
      allowed, index, value, after = 1, i, remaining, new_tat - now
    end
  end
end
if allowed == 0 then
  return {0, index, value, after}
end
for i = 1, #KEYS do
  -- %.0f: Lua's default number format would round 16-digit values to 14 significant digits.
  redis.call('SET', KEYS[i], string.format('%.0f', new_tats[i]), 'PX', math.ceil((new_tats[i] - now) / 1000) + 1000)
end
return {1, index, value, after}
"""


class RedisLimiter:
    def __init__(self, url: str) -> None:
        import redis

        self._errors = (redis.ConnectionError, redis.TimeoutError)
        self._client = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        self._script = self._client.register_script(GCRA_LUA)

    def check(self, buckets: list[Bucket], now: float) -> Decision:
        args: list[int] = [int(now * 1e6)]
        for bucket in buckets:
            args += [bucket.interval_us, bucket.burst]
        try:
            allowed, index, value, after = self._script(
                keys=[f"ratelimit:{bucket.name}" for bucket in buckets], args=args
            )
        except self._errors as exc:
            raise LimiterUnavailable(str(exc)) from exc
        bucket = buckets[int(index) - 1]
        if allowed:
            return Decision(True, bucket.rate_per_minute, bucket.burst, int(value), 0, after / 1e6)
        return Decision(False, bucket.rate_per_minute, bucket.burst, 0, after / 1e6, value / 1e6)


class LocalLimiter:
    def __init__(self) -> None:
        self._tats: dict[str, int] = {}
        self._lock = threading.Lock()

    def check(self, buckets: list[Bucket], now: float) -> Decision:
        with self._lock:
            stored = [self._tats.get(bucket.name) for bucket in buckets]
            decision, tats = _decide(stored, int(now * 1e6), buckets)
            if decision.allowed:
                self._tats.update((b.name, tat) for b, tat in zip(buckets, tats, strict=True))
        return decision


_limiter: RedisLimiter | LocalLimiter | None = None


def limiter() -> RedisLimiter | LocalLimiter:
    global _limiter
    if _limiter is None:
        _limiter = (
            RedisLimiter(settings.REDIS_LIMITER_URL) if settings.REDIS_URL else LocalLimiter()
        )
    return _limiter


def check(*buckets: Bucket) -> tuple[Decision, float]:
    """Count one request in every bucket (one Redis round trip), or in none if any is full."""
    now = time.time()
    return limiter().check(list(buckets), now), now
