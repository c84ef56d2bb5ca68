"""The usage section's data: 10,000 users, 10 million events over 90 days and their rollups,
written by PostgreSQL itself (generate_series), once, into a database of its own."""

from __future__ import annotations

import os
import time

USAGE_USERS = 10_000
USAGE_EVENTS = 10_000_000
USAGE_HEAVY_EVENTS = 1_000_000
USAGE_DAYS = 90
# (endpoint, share in percent), as an API like ours sees them.
USAGE_ENDPOINTS = [
    ("POST /api/generate", 30),
    ("GET /api/jobs/{job_id}", 30),
    ("POST /api/ocr", 12),
    ("GET /api/user/profile", 10),
    ("GET /api/jobs", 10),
    ("GET /api/templates", 5),
    ("GET /api/usage", 3),
]
# Events in time order (ids grow with time, as in production), each user's spread evenly
# over the 90 days. About 93% 2xx, 6.5% 4xx, 0.5% 5xx; POSTs that succeed cost a credit.
# Calls come from 20 addresses, and one in 10,007 from a 21st (the one a user looks for);
# submits and job reads carry a job id.
_SEED_EVENTS_SQL = """
INSERT INTO billing_usageevent (created_at, user_id, key_id, endpoint, method, status,
    error_code, credits, latency_ms, ip, request_id, job_id, rolled_up)
SELECT %(start)s::timestamptz + (g::float8 * %(span_s)s / %(count)s) * interval '1 second',
       b.user_id, b.keys[1 + g %% array_length(b.keys, 1)], e.endpoint,
       split_part(e.endpoint, ' ', 1), s.status,
       CASE s.status WHEN 200 THEN '' WHEN 404 THEN 'NOT_FOUND'
                     WHEN 429 THEN 'RATE_LIMIT_EXCEEDED' ELSE 'INTERNAL_ERROR' END,
       CASE WHEN s.status = 200 AND e.endpoint LIKE 'POST%%' THEN 1 ELSE 0 END,
       5 + (g * 7 %% 400) / 10.0,
       CASE WHEN g %% 10007 = 0 THEN '203.0.113.7'::inet ELSE ('10.0.' || g %% 20 || '.1')::inet END,
       'req_bench' || g,
       CASE WHEN e.endpoint LIKE '%%{{job_id}}' OR e.endpoint LIKE 'POST%%'
            THEN md5(g::text)::uuid END,
       true
FROM generate_series(%(first)s::bigint, %(last)s::bigint) g
JOIN bench_keys b ON b.n = {user_expression}
CROSS JOIN LATERAL (SELECT (%(endpoints)s::text[])[1 + (g * 7919) %% 100] AS endpoint) e
CROSS JOIN LATERAL (
    SELECT CASE WHEN (g * 104729) %% 1000 < 5 THEN 500 WHEN (g * 104729) %% 1000 < 40 THEN 404
                WHEN (g * 104729) %% 1000 < 70 THEN 429 ELSE 200 END AS status) s
"""
_SEED_ROLLUPS_SQL = """
INSERT INTO billing_usagerollup (user_id, day, key_id, endpoint, status_class, requests,
    credits, latency_ms_total)
SELECT user_id, (created_at AT TIME ZONE 'UTC')::date, key_id, endpoint, status / 100,
       count(*), sum(credits), sum(latency_ms)
FROM billing_usageevent GROUP BY 1, 2, 3, 4, 5
"""
_SEED_KEY_ROLLUPS_SQL = """
INSERT INTO billing_usagekeyrollup (user_id, day, key_id, status_class, requests, credits,
    latency_ms_total)
SELECT user_id, day, key_id, status_class, sum(requests), sum(credits), sum(latency_ms_total)
FROM billing_usagerollup GROUP BY 1, 2, 3, 4
"""


def seed_usage() -> float | None:
    """10,000 users with two keys each (the heavy one five), a million events for the heavy
    user and nine million spread over the others, over 90 days, and their rollups.
    Returns the seconds it took, or None when the seed is already there."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from apikeys.models import ApiKey, digest, generate_secret, hint_for
    from billing.models import CreditBalance, Plan, Subscription
    from usage.models import UsageRollup

    seeded = User.objects.filter(email__endswith="@usage.bench")
    # Rollups are written last: with them in place, the seed is complete.
    complete = seeded.count() == USAGE_USERS and UsageRollup.objects.exists()
    if complete and not os.environ.get("BENCH_RESEED"):
        return None
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE billing_usageevent, billing_usagerollup, billing_usagekeyrollup")
    seeded.delete()
    now = timezone.now()
    users = User.objects.bulk_create(
        User(email=f"user{n}@usage.bench", password="!", date_joined=now)
        for n in range(USAGE_USERS)
    )
    plan = Plan.objects.get(slug="pro")
    Subscription.objects.bulk_create(
        Subscription(user=user, plan=plan, billing_anchor_day=1) for user in users
    )
    CreditBalance.objects.bulk_create(
        CreditBalance(
            user=user,
            allowance=400,
            period_start=now - timedelta(days=20),
            period_end=now + timedelta(days=10),
        )
        for user in users
    )
    keys = []
    for index, user in enumerate(users):
        for k in range(5 if index == 0 else 2):
            secret = generate_secret("nh_")
            keys.append(
                ApiKey(
                    user=user,
                    name=f"key {k}",
                    scopes=["usage:read"],
                    digest=digest(secret),
                    hint=hint_for(secret),
                )
            )
    ApiKey.objects.bulk_create(keys, batch_size=5000)
    endpoints = [name for name, share in USAGE_ENDPOINTS for _ in range(share)]
    start = now - timedelta(days=USAGE_DAYS)
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE TEMP TABLE bench_keys AS
            SELECT row_number() OVER (ORDER BY u.id) - 1 AS n, u.id AS user_id,
                   array_agg(k.id ORDER BY k.id) AS keys
            FROM accounts_user u JOIN apikeys_apikey k ON k.user_id = u.id
            WHERE u.email LIKE '%%@usage.bench' GROUP BY u.id
        """)
        cursor.execute("CREATE UNIQUE INDEX ON bench_keys (n)")
        cursor.execute("ANALYZE bench_keys")
        others = USAGE_EVENTS - USAGE_HEAVY_EVENTS
        for count, user_expression in (
            (USAGE_HEAVY_EVENTS, "0"),
            (others, f"1 + g %% {USAGE_USERS - 1}"),
        ):
            # Batches of a million keep each statement's memory and WAL in bounds.
            for offset in range(0, count, 1_000_000):
                batch = min(1_000_000, count - offset)
                cursor.execute(
                    _SEED_EVENTS_SQL.format(user_expression=user_expression),
                    {
                        "start": start,
                        "span_s": USAGE_DAYS * 86400,
                        "count": count,
                        "first": offset,
                        "last": offset + batch - 1,
                        "endpoints": endpoints,
                    },
                )
                print(f"  seeded {offset + batch:,} of {count:,} events", flush=True)
        cursor.execute(_SEED_ROLLUPS_SQL)
        cursor.execute(_SEED_KEY_ROLLUPS_SQL)
        cursor.execute("ANALYZE billing_usageevent")
        # VACUUM as autovacuum would soon: the charts read rollups from the index alone.
        cursor.execute("VACUUM ANALYZE billing_usagerollup")
        cursor.execute("VACUUM ANALYZE billing_usagekeyrollup")
    return time.perf_counter() - started
