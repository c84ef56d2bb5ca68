"""The bench's harness: where it runs (databases, Redis, ports), how it measures (medians,
wrk, interleaved rounds, server-side timings) and how it records what it found."""

from __future__ import annotations

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.processes import start_usage_mover

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
results: dict[str, object] = {}  # this section's numbers, saved by run.py


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


def sepia_body() -> dict[str, str]:
    """The bench's submit: Sepia on a 64x64 PNG."""
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 80, 40)).save(buffer, format="PNG")
    image = base64.b64encode(buffer.getvalue()).decode()
    return {"image": image, "template": "Sepia", "templateType": "filters"}


def bench_user(
    email: str = "bench@example.com",
    scopes: list[str] | None = None,
    *,
    monthly_credits: int | None = None,
) -> tuple[Any, str]:
    """A user on a bench plan with limits high enough not to throttle the load: unmetered, or
    with `monthly_credits` (then a submit takes the credit-debit path, as most users' do)."""
    from allauth.account.models import EmailAddress

    from accounts.models import User
    from apikeys.models import PRESETS, ApiKey
    from billing import ledger
    from billing.models import Plan, Subscription

    plan, _ = Plan.objects.update_or_create(
        slug="bench" if monthly_credits is None else "bench-metered",
        defaults={
            "name": "Bench" if monthly_credits is None else "Bench (metered)",
            "monthly_credits": monthly_credits,
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
    if monthly_credits is not None:
        ledger.open_account(user)  # the balance row and this period's allowance
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
    port: int = PORT,
) -> Iterator[str]:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--bind",
        f"127.0.0.1:{port}",
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
    env = {**os.environ, **ENV}
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    # The Procfile's `usage` process beside it: the events are moved to PostgreSQL under the
    # load, as in production, not left in Redis for after the measurement.
    mover = start_usage_mover(env)
    base = f"http://127.0.0.1:{port}"
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
        for started in (process, mover):
            os.killpg(started.pid, signal.SIGTERM)
        for started in (process, mover):
            started.wait(timeout=30)


def wrk(
    url: str,
    headers: dict[str, str],
    seconds: int = 8,
    connections: int = 16,
    script: str | None = None,
) -> dict[str, float]:
    """Requests per second and median latency from wrk (C, so the client costs little CPU)."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk (make bench does this)")
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in {**PROXY_HEADERS, **headers}.items():
        command += ["-H", f"{name}: {value}"]
    if script:
        command += ["-s", script]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps_match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", output)
    if rps_match is None or p50 is None:
        raise RuntimeError(f"wrk printed no rate or median:\n{output}")
    rps = float(rps_match.group(1))
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
) -> list[dict[str, float]]:
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


class DatabaseTime:
    """Wall time spent in database calls (an execute wrapper), to split server time."""

    def __init__(self) -> None:
        self.ns = 0

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        start = time.perf_counter_ns()
        try:
            return execute(sql, params, many, context)
        finally:
            self.ns += time.perf_counter_ns() - start


def server_samples(
    client: Any, path: str, repeat: int, **headers: str
) -> list[tuple[float, float]]:
    """(total, database) milliseconds of each of `repeat` requests served in this process."""
    from django.db import connection

    samples = []
    for _ in range(repeat):
        meter = DatabaseTime()
        with connection.execute_wrapper(meter):
            start = time.perf_counter_ns()
            response = client.get(path, headers=headers)
            total = time.perf_counter_ns() - start
        assert response.status_code == 200, response.content[:300]
        samples.append((total / 1e6, meter.ns / 1e6))
    return samples


def server_times(client: Any, path: str, repeat: int, **headers: str) -> tuple[float, float]:
    """Median total and database milliseconds of a request served in this process."""
    samples = server_samples(client, path, repeat, **headers)
    return (
        statistics.median(total for total, _ in samples),
        statistics.median(database for _, database in samples),
    )
