"""`make bench`: speed checks against the real PostgreSQL and Redis, medians and ratios.

Each section prints its numbers and adds them to var/bench/results.json. Run one section
with `make bench ARGS="auth"`. Sections: see SECTIONS at the bottom.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/nanostudio_bench"
)
# The usage section's 10 million events are seeded once into their own database and reused
# (BENCH_RESEED=1 to seed again); every other section starts from an empty database.
USAGE_DATABASE_URL = os.environ.get(
    "BENCH_USAGE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/nanostudio_bench_usage"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
PORT = int(os.environ.get("BENCH_PORT", "8765"))

ENV = {
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "DEBUG": "0",
    "SECRET_KEY": "bench-" + "s" * 60,
    "API_KEY_PEPPER": "bench-pepper-" + "p" * 30,
    "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "VAR_DIR": str(ROOT / "var" / "bench"),
    "LOG_LEVEL": "WARNING",
}
# Requests arrive as if from the TLS-terminating proxy, as in production.
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}
results: dict[str, object] = {}


def record(name: str, value: object, unit: str = "") -> None:
    results[name] = value
    shown = f"{value:.3f}" if isinstance(value, float) else str(value)
    print(f"  {name:<58} {shown} {unit}".rstrip())


def median_ms(samples_ns: list[int]) -> float:
    return statistics.median(samples_ns) / 1e6


def timed(function: Callable[[], object], repeat: int) -> list[int]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        function()
        samples.append(time.perf_counter_ns() - start)
    return samples


def setup_database(url: str, *, fresh: bool) -> None:
    """Create the database (dropping it first when `fresh`) and migrate it."""
    import psycopg

    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if fresh and exists:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if fresh or not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    for command in (["migrate"], ["collectstatic"]):  # pages need the static manifest
        subprocess.run(
            [sys.executable, "manage.py", *command, "--noinput", "-v0"],
            cwd=ROOT,
            env={**os.environ, **ENV, "DATABASE_URL": url},
            check=True,
        )
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def bench_user(email: str = "bench@example.com", scopes: list[str] | None = None):
    """A user on an unmetered bench plan (limits high enough not to throttle the load)."""
    from allauth.account.models import EmailAddress

    from accounts.models import User
    from apikeys.models import PRESETS, ApiKey
    from billing.models import Plan, Subscription

    plan, _ = Plan.objects.update_or_create(
        slug="bench",
        defaults={
            "name": "Bench",
            "monthly_credits": None,
            "rate_per_minute": 10_000_000,
            "burst": 10_000_000,
            "max_api_keys": 1000,
            "max_concurrent_jobs": 1000,
            "is_public": False,
        },
    )
    user, _ = User.objects.get_or_create(email=email)
    EmailAddress.objects.get_or_create(user=user, email=email, verified=True, primary=True)
    Subscription.objects.update_or_create(
        user=user, defaults={"plan": plan, "billing_anchor_day": 1}
    )
    n = ApiKey.objects.filter(user=user).count()
    return user, ApiKey.objects.mint(user, name=f"bench {n}", scopes=scopes or PRESETS["full"][1])[
        1
    ]


@contextmanager
def gunicorn(
    workers: int = 2,
    threads: int = 8,
    worker_connections: int = 1000,
    app: str = "nanostudio.wsgi:application",
) -> Iterator[str]:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--bind",
        f"127.0.0.1:{PORT}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--worker-connections",
        str(worker_connections),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **ENV}, start_new_session=True)
    base = f"http://127.0.0.1:{PORT}"
    import requests

    for _ in range(100):
        try:
            requests.get(f"{base}/healthz", timeout=1)
            break
        except requests.RequestException:  # not listening yet, or still booting
            time.sleep(0.1)
    try:
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def wrk(
    url: str,
    headers: dict[str, str],
    seconds: int = 8,
    connections: int = 16,
    script: str | None = None,
) -> dict:
    """Requests per second and median latency from wrk (C, so the client costs little CPU)."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk (make bench does this)")
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in {**PROXY_HEADERS, **headers}.items():
        command += ["-H", f"{name}: {value}"]
    if script:
        command += ["-s", script]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", output)
    factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": rps,
        "p50_ms": float(p50.group(1)) * factor,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def interleaved(
    loads: list[tuple[str, dict[str, str], str | None]],
    rounds: int = 3,
    seconds: int = 8,
    after: Callable[[], object] | None = None,
) -> list[dict]:
    """wrk each (url, headers, script) in turn, `rounds` times over, so that drift on this
    shared machine hits every load alike. Per load: medians, and the non-2xx count summed.
    `after` runs after each load."""
    runs = []
    for _ in range(rounds):
        for url, headers, script in loads:
            runs.append(wrk(url, headers, seconds=seconds, script=script))
            if after:
                after()
    per_load = [runs[i :: len(loads)] for i in range(len(loads))]
    return [
        {
            name: sum(run[name] for run in load)
            if name == "non_2xx"
            else statistics.median(run[name] for run in load)
            for name in load[0]
        }
        for load in per_load
    ]


def server_timings(url: str, headers: dict[str, str], count: int) -> dict[str, list[float]]:
    """Step durations the server measured itself (`Server-Timing`) over `count` requests."""
    import requests

    session = requests.Session()
    found: dict[str, list[float]] = {}
    for _ in range(count):
        response = session.get(url, headers={**PROXY_HEADERS, **headers}, timeout=30)
        for part in response.headers.get("Server-Timing", "").split(","):
            name, _, value = part.strip().partition(";dur=")
            if value:
                found.setdefault(name, []).append(float(value))
    return found


# --- Sections ----------------------------------------------------------------------------


def section_auth() -> None:
    """Authentication inside the server, and /api/user/profile against a bare view."""
    from django.db import connection
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext

    from apikeys.auth import ApiKeyAuth
    from apikeys.models import ApiKey
    from nanostudio.http import ApiCall

    def api_get(headers: dict[str, str]):
        """A request as ApiMiddleware hands it on: with its call object."""
        request = factory.get("/api/user/profile", headers=headers)
        request.api = ApiCall()
        return request

    _, secret = bench_user()
    auth = ApiKeyAuth()
    factory = RequestFactory()
    request = api_get({"Authorization": f"Bearer {secret}"})
    auth(request)  # warm up: connection, last-used write, prepared statement
    with CaptureQueriesContext(connection) as queries:
        auth(request)
    samples = timed(lambda: ApiKey.objects.authenticate(secret), 5000)
    record("auth: queries per request", len(queries))
    record("auth: median authenticate() (5000 requests)", median_ms(samples), "ms")
    record("auth: p95 authenticate()", statistics.quantiles(samples, n=20)[-1] / 1e6, "ms")
    samples = timed(lambda: auth(request), 5000)
    record("auth: median whole auth step incl. rate limit (5000)", median_ms(samples), "ms")
    bad = api_get({"Authorization": "Bearer nh_" + "x" * 38})
    record(
        "auth: median, malformed key (no query)",
        median_ms(timed(lambda: _refused(auth, bad), 5000)),
        "ms",
    )

    # The app plus two floors (bench/floor.py): the bare view with only the key query and the
    # rate-limit step that every API call needs, and with the usage insert too.
    key_header = {"Authorization": f"Bearer {secret}"}
    with gunicorn(app="bench.floor:application") as base:
        timings = server_timings(f"{base}/api/user/profile", key_header, 3000)
        paths = ["/healthz", "/floor/unrecorded", "/floor", "/api/user/profile"]
        bare, unrecorded, floor, profile = interleaved(
            [(f"{base}{path}", key_header, None) for path in paths]
        )
    record(
        "http: auth median from Server-Timing (3000 requests)",
        statistics.median(timings["auth"]),
        "ms",
    )
    record("http: bare JSON view req/s (gunicorn 2x8 gthread, median of 3)", bare["rps"])
    record("http: floor req/s, bare + key query + rate-limit step", unrecorded["rps"])
    record("http: floor req/s, the same + usage insert", floor["rps"])
    record("http: /api/user/profile req/s", profile["rps"])
    record("http: profile / bare throughput", profile["rps"] / bare["rps"])
    record("http: floor / bare, without the usage insert", unrecorded["rps"] / bare["rps"])
    record("http: floor / bare, with it", floor["rps"] / bare["rps"])
    record("http: profile / floor throughput", profile["rps"] / floor["rps"])
    record("http: bare median latency", bare["p50_ms"], "ms")
    record("http: profile median latency", profile["p50_ms"], "ms")
    record("http: non-2xx responses", sum(run["non_2xx"] for run in (unrecorded, floor, profile)))


def _refused(auth, request) -> None:
    with suppress(Exception):  # the refusal is what is being timed
        auth(request)


def section_billing() -> None:
    """Reservations (debit + ledger entry) on one hot account; the rate-limit step."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from billing import ledger, ratelimit
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
    samples = timed(lambda: limiter.check("bench", 10_000_000, 10_000_000, now), 5000)
    record("ratelimit: median GCRA check, one Redis round trip (5000)", median_ms(samples), "ms")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    record(
        "ratelimit: median Redis PING on the same machine (baseline)",
        median_ms(timed(client.ping, 5000)),
        "ms",
    )


SUBMIT_CAPTURE = OUT / "submit-round-trips.pickle"
JOB_USERS = 20


def _capture_submits(secrets: list[str], body: dict) -> tuple[int, int]:
    """Record one async submit per key: its SQL statements (with their parameters and whether
    they ran in the transaction) and its Redis sends, for bench/floor.py to replay in turn (so
    the replay, like the load, spreads its jobs over the users). Returns one submit's counts."""
    import pickle

    from django.db import connection
    from django.test import Client
    from redis.connection import AbstractConnection

    captures = []
    send = AbstractConnection.send_packed_command
    for secret in secrets:
        headers = {"Authorization": f"Bearer {secret}", "Prefer": "respond-async"}
        client = Client(headers={**PROXY_HEADERS, **headers})
        submit = partial(client.post, "/api/generate", body, content_type="application/json")
        submit()  # warm: connections, prepared statements, the queue's declaration
        statements, sent = [], []

        def counting_send(self, command, *args, sent=sent, **kwargs):  # a pipeline is one send
            sent.append(command)
            return send(self, command, *args, **kwargs)

        def capture(execute, sql, params, many, context, statements=statements):
            statements.append((sql, params, connection.in_atomic_block))
            return execute(sql, params, many, context)

        AbstractConnection.send_packed_command = counting_send
        try:
            with connection.execute_wrapper(capture):
                assert submit().status_code == 202
        finally:
            AbstractConnection.send_packed_command = send
        captures.append({"statements": statements, "redis": sent})
    SUBMIT_CAPTURE.write_bytes(pickle.dumps(captures))
    # BEGIN and COMMIT do not pass through the wrapper: one each around the transaction.
    return len(captures[0]["statements"]) + 2, len(captures[0]["redis"])


def section_jobs() -> None:
    """Async submits against the bare view; submit-to-done latency; sync waiters held."""
    import base64
    import io
    import threading

    import requests
    from PIL import Image

    from conftest import start_worker, stop_worker
    from nanostudio.celery import app
    from studio.models import Job

    # The load is spread over several users, as a real API's is, so that no user reaches the
    # plan's concurrent-job cap (a 429 is cheaper than an accepted job and would flatter).
    secrets = [
        bench_user(f"jobs{n}@example.com", scopes=["generate", "jobs:read"])[1]
        for n in range(JOB_USERS)
    ]
    secret = secrets[0]
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 80, 40)).save(buffer, format="PNG")
    body = {
        "image": base64.b64encode(buffer.getvalue()).decode(),
        "template": "Sepia",
        "templateType": "filters",
    }
    script = OUT / "submit.lua"
    OUT.mkdir(parents=True, exist_ok=True)
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [[{json.dumps(body)}]]\n"
        f"local secrets = {{{', '.join(json.dumps(s) for s in secrets)}}}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n % #secrets + 1\n"
        '  wrk.headers["Authorization"] = "Bearer " .. secrets[n]\n'
        "  return wrk.format()\n"
        "end\n"
    )
    sql, redis_calls = _capture_submits(secrets, body)
    trips = sql + redis_calls
    record(f"jobs: round trips per async submit ({sql} SQL + {redis_calls} Redis)", trips)

    def clear_queue() -> None:
        """Cancel the jobs a load left queued (no worker runs) and drop their messages, so that
        the next load starts where this one did."""
        Job.objects.filter(status=Job.Status.QUEUED).update(status=Job.Status.CANCELLED)
        app.control.purge()

    # As the Procfile runs it: a worker takes no more connections than it has threads.
    with gunicorn(threads=32, worker_connections=32, app="bench.floor:application") as base:
        bare, floor, replay, lean, submit = interleaved(
            [
                (f"{base}/healthz", {}, None),
                (f"{base}/floor/round-trips/{trips}", {}, None),
                (f"{base}/floor/submit-replay", {}, None),
                (f"{base}/floor/submit-replay/lean", {}, None),
                (f"{base}/api/generate", {"Prefer": "respond-async"}, str(script)),
            ],
            seconds=6,
            after=clear_queue,
        )
        record("jobs: bare JSON view req/s (median of 3 interleaved rounds)", bare["rps"])
        record(f"jobs: floor req/s, bare + {trips} SELECT 1 round trips", floor["rps"])
        record("jobs: floor req/s, bare + the submit's own round trips replayed", replay["rps"])
        record("jobs: the same without savepoint and plan query (lean)", lean["rps"])
        record("jobs: async submit req/s (Prefer: respond-async)", submit["rps"])
        record("jobs: async submit / bare throughput", submit["rps"] / bare["rps"])
        record("jobs: SELECT 1 floor / bare throughput", floor["rps"] / bare["rps"])
        record("jobs: replay floor / bare throughput", replay["rps"] / bare["rps"])
        record("jobs: lean replay floor / bare throughput", lean["rps"] / bare["rps"])
        record("jobs: async submit / replay floor throughput", submit["rps"] / replay["rps"])
        record(
            "jobs: non-2xx responses (replays, submit)",
            sum(run["non_2xx"] for run in (replay, lean, submit)),
        )

        worker = start_worker({**os.environ, **ENV}, "--concurrency", "2")
        try:
            session = requests.Session()
            auth = {**PROXY_HEADERS, "Authorization": f"Bearer {secret}"}
            latencies = []
            for _ in range(30):
                started = time.perf_counter()
                response = session.post(f"{base}/api/generate", json=body, headers=auth, timeout=60)
                assert (
                    response.status_code == 200 and response.json()["data"]["status"] == "succeeded"
                ), response.text
                latencies.append(time.perf_counter() - started)
            record(
                "jobs: submit-to-done latency, 64x64 Sepia, sync (median of 30)",
                statistics.median(latencies) * 1000,
                "ms",
            )

            # 50 clients waiting on jobs that cannot finish (no worker): does /profile still answer?
            stop_worker(worker)
            waiters = [
                threading.Thread(
                    target=lambda: requests.post(
                        f"{base}/api/generate", json=body, headers=auth, timeout=60
                    )
                )
                for _ in range(50)
            ]
            for thread in waiters:
                thread.start()
            time.sleep(2)
            profile = []
            for _ in range(50):
                started = time.perf_counter()
                ok_ = (
                    session.get(f"{base}/api/user/profile", headers=auth, timeout=10).status_code
                    == 200
                )
                profile.append((time.perf_counter() - started) * 1000 if ok_ else float("inf"))
            record("jobs: sync waiters held open", 50)
            record("jobs: /profile median while 50 wait", statistics.median(profile), "ms")
            record("jobs: /profile max while 50 wait", max(profile), "ms")
            for thread in waiters:
                thread.join()
        finally:
            stop_worker(worker)


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
_SEED_EVENTS_SQL = """
INSERT INTO billing_usageevent (created_at, user_id, key_id, endpoint, method, status,
    error_code, credits, latency_ms, ip, request_id, job_id, rolled_up)
SELECT %(start)s::timestamptz + (g::float8 * %(span_s)s / %(count)s) * interval '1 second',
       b.user_id, b.keys[1 + g %% array_length(b.keys, 1)], e.endpoint,
       split_part(e.endpoint, ' ', 1), s.status,
       CASE s.status WHEN 200 THEN '' WHEN 404 THEN 'NOT_FOUND'
                     WHEN 429 THEN 'RATE_LIMIT_EXCEEDED' ELSE 'INTERNAL_ERROR' END,
       CASE WHEN s.status = 200 AND e.endpoint LIKE 'POST%%' THEN 1 ELSE 0 END,
       5 + (g * 7 %% 400) / 10.0, '10.0.0.1', 'req_bench' || g, NULL, true
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


def _seed_usage() -> float | None:
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

    users = User.objects.filter(email__endswith="@usage.bench")
    # Rollups are written last: with them in place, the seed is complete.
    complete = users.count() == USAGE_USERS and UsageRollup.objects.exists()
    if complete and not os.environ.get("BENCH_RESEED"):
        return None
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE billing_usageevent, billing_usagerollup, billing_usagekeyrollup")
    users.delete()
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


class _DatabaseTime:
    """Wall time spent in database calls (an execute wrapper), to split server time."""

    def __init__(self) -> None:
        self.ns = 0

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter_ns()
        try:
            return execute(sql, params, many, context)
        finally:
            self.ns += time.perf_counter_ns() - start


def _server_times(client, path: str, repeat: int, **headers) -> tuple[float, float]:
    """Median total and database milliseconds of a request served in this process."""
    from django.db import connection

    totals, database = [], []
    for _ in range(repeat):
        meter = _DatabaseTime()
        with connection.execute_wrapper(meter):
            start = time.perf_counter_ns()
            response = client.get(path, headers=headers)
            totals.append(time.perf_counter_ns() - start)
        assert response.status_code == 200, response.content[:300]
        database.append(meter.ns)
    return median_ms(totals), median_ms(database)


def section_usage() -> None:
    """Usage page and /api/usage over 10 million events: a typical and the heavy user."""
    from django.test import Client

    from accounts.models import User
    from apikeys.models import ApiKey
    from billing.periods import utc_today
    from usage import metering
    from usage.models import UsageEvent

    seconds = _seed_usage()
    if seconds is None:
        print("  reusing the seeded events (BENCH_RESEED=1 seeds again)")
    else:
        record("usage: seeding 10M events + rollups", seconds, "s")
    record("usage: events in the database", UsageEvent.objects.count())
    for label, email in (("typical", "user5000@usage.bench"), ("heavy", "user0@usage.bench")):
        user = User.objects.get(email=email)
        record(f"usage: {label} user's events", UsageEvent.objects.filter(user=user).count())
        client = Client(headers=PROXY_HEADERS, secure=True)
        client.force_login(user)
        # The API with one of the user's own keys (minted now: the secret is needed).
        ApiKey.objects.filter(user=user, name="bench reader").delete()
        _, secret = ApiKey.objects.mint(user, name="bench reader", scopes=["usage:read"])
        api_client = Client(
            headers={**PROXY_HEADERS, "Authorization": f"Bearer {secret}"}, secure=True
        )
        for days in (30, 90):
            last = utc_today()
            first = last - timedelta(days=days - 1)
            _server_times(client, f"/usage/?days={days}", 3)  # warm up
            total, database = _server_times(client, f"/usage/?days={days}", 30)
            record(f"usage: page, {label} user, {days} days: median server time", total, "ms")
            record(f"usage: page, {label} user, {days} days: database part", database, "ms")
            path = f"/api/usage?from={first}&to={last}&group_by=key"
            _server_times(api_client, path, 3)
            total, database = _server_times(api_client, path, 30)
            record(f"usage: API, {label} user, {days} days: median server time", total, "ms")
            record(f"usage: API, {label} user, {days} days: database part", database, "ms")
        metering.roll_up()  # fold in the bench's own requests

    # What recording costs a request: the same profile call with and without the insert.
    from django.db import connection

    _, secret = bench_user("recording@bench.example")  # limits high enough for 6000 calls
    client = Client(headers={**PROXY_HEADERS, "Authorization": f"Bearer {secret}"}, secure=True)
    _server_times(client, "/api/user/profile", 200)
    original = metering.record
    with_event, without_event = [], []
    try:
        # Interleaved rounds, so drift on this shared machine hits both sides alike.
        for _ in range(6):
            metering.record = original
            with_event.append(_server_times(client, "/api/user/profile", 500)[0])
            metering.record = lambda *args: None  # the baseline: the same request, not recorded
            without_event.append(_server_times(client, "/api/user/profile", 500)[0])
    finally:
        metering.record = original
    with_event, without_event = statistics.median(with_event), statistics.median(without_event)
    record(
        "usage: profile request without recording (median, 6 x 500 interleaved)",
        without_event,
        "ms",
    )
    record("usage: profile request with recording (median, 6 x 500 interleaved)", with_event, "ms")
    record("usage: cost of recording an event", with_event - without_event, "ms")
    pending = UsageEvent.objects.filter(rolled_up=False).count()
    started = time.perf_counter()
    metering.roll_up()
    record(f"usage: roll-up of {pending} pending events", time.perf_counter() - started, "s")
    connection.close()


SECTIONS: dict[str, Callable[[], None]] = {
    "auth": section_auth,
    "billing": section_billing,
    "jobs": section_jobs,
    "usage": section_usage,
}


def run_section(name: str) -> None:
    """One section in this process, on its own database; its numbers go to var/bench/<name>.json."""
    database_url = USAGE_DATABASE_URL if name == "usage" else DATABASE_URL
    os.environ.update({**ENV, "DATABASE_URL": database_url})
    os.environ["DJANGO_SETTINGS_MODULE"] = "nanostudio.settings"
    sys.path.insert(0, str(ROOT))
    setup_database(database_url, fresh=name != "usage")
    import django

    django.setup()
    print(f"\n[{name}] {SECTIONS[name].__doc__.strip()}", flush=True)
    started = time.perf_counter()
    SECTIONS[name]()
    print(f"  ({time.perf_counter() - started:.1f} s)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(results, indent=2))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--section"]:
        run_section(argv[1])
        return 0
    chosen = argv or list(SECTIONS)
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        raise SystemExit(
            f"Unknown section(s) {', '.join(sorted(unknown))}; pick from {list(SECTIONS)}"
        )
    print(f"Benchmarks on PostgreSQL and {REDIS_URL} ({os.cpu_count()} CPUs)")
    combined = {}
    for name in chosen:
        # A process per section: each has its own database and starts with cold caches.
        subprocess.run([sys.executable, __file__, "--section", name], cwd=ROOT, check=True)
        combined.update(json.loads((OUT / f"{name}.json").read_text()))
    (OUT / "results.json").write_text(json.dumps(combined, indent=2))
    print(f"\nSaved {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
