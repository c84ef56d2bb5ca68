"""`make bench ARGS=billing`."""

from __future__ import annotations

import time

from bench.harness import REDIS_URL, bench_user, median_ms, record, timed


def run() -> None:
    """Reservations (debit + ledger entry) on one hot account; the rate-limit step."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from apikeys import ratelimit
    from billing import ledger
    from billing.models import Plan
    from studio.models import Job

    user, _ = bench_user("hot@example.com")
    ledger.change_plan(user, Plan.objects.get(slug="pro"))  # a metered plan
    ledger.grant_topup(user, 10_000_000, "bench")
    jobs = iter(Job.objects.bulk_create([Job(user=user, kind="generate") for _ in range(40_000)]))
    samples = timed(lambda: ledger.reserve(user, 1, next(jobs)), 2000)
    record("reserve: median, one hot account (2000 sequential)", median_ms(samples), "ms")

    def worker(seconds: float) -> int:
        done, deadline = 0, time.perf_counter() + seconds
        try:
            while time.perf_counter() < deadline:
                ledger.reserve(user, 1, next(jobs))
                done += 1
        finally:
            connection.close()
        return done

    for threads in (1, 8):
        with ThreadPoolExecutor(threads) as pool:
            total = sum(pool.map(worker, [5.0] * threads))
        record(
            f"reserve: throughput, {threads} connection(s) on the hot account", total / 5.0, "/s"
        )

    limiter = ratelimit.RedisLimiter(REDIS_URL)
    now = time.time()
    key_bucket = ratelimit.Bucket("bench-key", 10_000_000, 10_000_000)
    account_bucket = ratelimit.Bucket("bench-account", 10_000_000, 10_000_000)
    samples = timed(lambda: limiter.check([key_bucket], now), 5000)
    record("ratelimit: median GCRA check, one bucket (5000)", median_ms(samples), "ms")
    samples = timed(lambda: limiter.check([key_bucket, account_bucket], now), 5000)
    record(
        "ratelimit: median GCRA check, key + account buckets in one round trip (5000)",
        median_ms(samples),
        "ms",
    )
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    record(
        "ratelimit: median Redis PING on the same machine (baseline)",
        median_ms(timed(client.ping, 5000)),
        "ms",
    )
