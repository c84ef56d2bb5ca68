"""Per-key rate limits: GCRA (generic cell rate algorithm).

`rate_per_minute` sets the emission interval T = 60 s / rate; `burst` is how many requests may
arrive at once. Each key stores one number, its theoretical arrival time (TAT). A request at
`now` is allowed if TAT + T - burst·T <= now, and then TAT becomes max(TAT, now) + T.

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


def _decide(tat: int | None, now: int, rate_per_minute: int, burst: int) -> tuple[Decision, int]:
    """The GCRA step in microseconds; the Lua script below is the same, line for line."""
    interval = _interval_us(rate_per_minute)
    tat = max(tat if tat is not None else now, now)
    tolerance = interval * burst
    new_tat = tat + interval
    allow_at = new_tat - tolerance
    if allow_at > now:
        retry, reset = (allow_at - now) / 1e6, (tat - now) / 1e6
        return Decision(False, rate_per_minute, burst, 0, retry, reset), tat
    remaining = (tolerance - (new_tat - now)) // interval
    return Decision(True, rate_per_minute, burst, remaining, 0, (new_tat - now) / 1e6), new_tat


# KEYS[1]: the TAT key. ARGV: now, interval (both µs), burst. Returns {allowed, remaining,
# retry_after, reset_after} in µs. Integers throughout: Redis truncates Lua numbers on return,
# and µs since the epoch (~2^51) are still exact in Lua's doubles.
GCRA_LUA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local tolerance = interval * burst
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
-- %.0f: Lua's default number format would round 16-digit values to 14 significant digits.
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, math.floor((tolerance - (new_tat - now)) / interval), 0, new_tat - now}
"""


class RedisLimiter:
    def __init__(self, url: str) -> None:
        import redis

        self._errors = (redis.ConnectionError, redis.TimeoutError)
        self._client = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        self._script = self._client.register_script(GCRA_LUA)

    def check(self, key: str, rate_per_minute: int, burst: int, now: float) -> Decision:
        try:
            allowed, remaining, retry_us, reset_us = self._script(
                keys=[f"ratelimit:{key}"],
                args=[int(now * 1e6), _interval_us(rate_per_minute), burst],
            )
        except self._errors as exc:
            raise LimiterUnavailable(str(exc)) from exc
        return Decision(
            bool(allowed), rate_per_minute, burst, int(remaining), retry_us / 1e6, reset_us / 1e6
        )


class LocalLimiter:
    def __init__(self) -> None:
        self._tats: dict[str, int] = {}
        self._lock = threading.Lock()

    def check(self, key: str, rate_per_minute: int, burst: int, now: float) -> Decision:
        with self._lock:
            decision, tat = _decide(self._tats.get(key), int(now * 1e6), rate_per_minute, burst)
            self._tats[key] = tat
        return decision


_limiter: RedisLimiter | LocalLimiter | None = None


def limiter() -> RedisLimiter | LocalLimiter:
    global _limiter
    if _limiter is None:
        _limiter = RedisLimiter(settings.REDIS_URL) if settings.REDIS_URL else LocalLimiter()
    return _limiter


def check(key: str, rate_per_minute: int, burst: int) -> tuple[Decision, float]:
    now = time.time()
    return limiter().check(key, rate_per_minute, burst, now), now
