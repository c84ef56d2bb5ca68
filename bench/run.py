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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/nanostudio_bench"
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


def setup_database() -> None:
    import psycopg

    admin_url = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT, env={**os.environ, **ENV}, check=True,
    )  # fmt: skip
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
        defaults={"name": "Bench", "monthly_credits": None, "rate_per_minute": 10_000_000,
                  "burst": 10_000_000, "max_api_keys": 1000, "max_concurrent_jobs": 1000,
                  "is_public": False},
    )  # fmt: skip
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
def gunicorn(workers: int = 2, threads: int = 8) -> Iterator[str]:
    command = [
        sys.executable, "-m", "gunicorn", "nanostudio.wsgi:application", "--bind", f"127.0.0.1:{PORT}",
        "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
        "--log-level", "warning",
    ]  # fmt: skip
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

    _, secret = bench_user()
    auth = ApiKeyAuth()
    factory = RequestFactory()
    request = factory.get("/api/user/profile", headers={"Authorization": f"Bearer {secret}"})
    auth(request)  # warm up: connection, last-used write, prepared statement
    with CaptureQueriesContext(connection) as queries:
        auth(request)
    samples = timed(lambda: ApiKey.objects.authenticate(secret), 5000)
    record("auth: queries per request", len(queries))
    record("auth: median authenticate() (5000 requests)", median_ms(samples), "ms")
    record("auth: p95 authenticate()", statistics.quantiles(samples, n=20)[-1] / 1e6, "ms")
    samples = timed(lambda: auth(request), 5000)
    record("auth: median whole auth step incl. rate limit (5000)", median_ms(samples), "ms")
    bad = factory.get("/api/user/profile", headers={"Authorization": "Bearer nh_" + "x" * 38})
    record(
        "auth: median, malformed key (no query)",
        median_ms(timed(lambda: _refused(auth, bad), 5000)),
        "ms",
    )

    with gunicorn() as base:
        timings = server_timings(
            f"{base}/api/user/profile", {"Authorization": f"Bearer {secret}"}, 3000
        )
        bare = wrk(f"{base}/healthz", {})
        profile = wrk(f"{base}/api/user/profile", {"Authorization": f"Bearer {secret}"})
    record(
        "http: auth median from Server-Timing (3000 requests)",
        statistics.median(timings["auth"]),
        "ms",
    )
    record("http: bare JSON view req/s (gunicorn 2x8 gthread)", bare["rps"])
    record("http: /api/user/profile req/s", profile["rps"])
    record("http: profile / bare throughput", profile["rps"] / bare["rps"])
    record("http: bare median latency", bare["p50_ms"], "ms")
    record("http: profile median latency", profile["p50_ms"], "ms")
    record("http: profile non-2xx responses", profile["non_2xx"])


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


def section_jobs() -> None:
    """Async submits against the bare view; submit-to-done latency; sync waiters held."""
    import base64
    import io
    import threading

    import requests
    from PIL import Image

    from conftest import start_worker, stop_worker

    _, secret = bench_user("jobs@example.com", scopes=["generate", "jobs:read"])
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
    )
    headers = {"Authorization": f"Bearer {secret}", "Prefer": "respond-async"}
    with gunicorn(threads=32) as base:
        bare = wrk(f"{base}/healthz", {}, seconds=6)
        submit = wrk(f"{base}/api/generate", headers, seconds=6, script=str(script))
        record("jobs: bare JSON view req/s", bare["rps"])
        record("jobs: async submit req/s (Prefer: respond-async)", submit["rps"])
        record("jobs: async submit / bare throughput", submit["rps"] / bare["rps"])
        record("jobs: async submit non-2xx responses", submit["non_2xx"])

        # The load above queued jobs with no worker running: clear them, so the latency
        # below measures a job, not the backlog (their messages are skipped by claim()).
        from studio.models import Job

        Job.objects.filter(status=Job.Status.QUEUED).update(status=Job.Status.CANCELLED)
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


SECTIONS: dict[str, Callable[[], None]] = {
    "auth": section_auth,
    "billing": section_billing,
    "jobs": section_jobs,
}


def main(argv: list[str]) -> int:
    chosen = argv or list(SECTIONS)
    os.environ.update(ENV)
    os.environ["DJANGO_SETTINGS_MODULE"] = "nanostudio.settings"
    sys.path.insert(0, str(ROOT))
    print(f"Benchmarks on {DATABASE_URL} and {REDIS_URL} ({os.cpu_count()} CPUs)")
    setup_database()
    import django

    django.setup()
    for name in chosen:
        print(f"\n[{name}] {SECTIONS[name].__doc__.strip()}")
        started = time.perf_counter()
        SECTIONS[name]()
        print(f"  ({time.perf_counter() - started:.1f} s)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\nSaved {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
