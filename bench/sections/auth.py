"""`make bench ARGS=auth`."""

from __future__ import annotations

import statistics
from contextlib import suppress
from typing import cast

from bench.harness import (
    PORT,
    PROXY_HEADERS,
    bench_user,
    gunicorn,
    interleaved,
    median_ms,
    record,
    server_timings,
    timed,
)


def run() -> None:
    """Authentication inside the server, and /api/user/profile against a bare view."""
    from django.db import connection
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext

    from apikeys.auth import ApiKeyAuth
    from apikeys.models import ApiKey, _auth_statement, digest
    from nanostudio.http import ApiCall, ApiRequest

    def api_get(headers: dict[str, str]) -> ApiRequest:
        """A request as ApiMiddleware hands it on: with its call object."""
        request = cast(ApiRequest, factory.get("/api/user/profile", headers=headers))
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
    with connection.cursor() as cursor:  # the floor under it: one bare round trip
        round_trips = timed(lambda: cursor.execute("SELECT 1"), 5000)
    record("auth: median SELECT 1 round trip, the floor under it", median_ms(round_trips), "ms")
    # The nearer floor: the very statement authenticate() sends, prepared, through psycopg
    # alone (no Django cursor, no model instances), rows fetched.
    sql, _ = _auth_statement()
    presented = [digest(secret)] * 2
    with connection.connection.cursor() as cursor:
        own_query = timed(lambda: cursor.execute(sql, presented, prepare=True).fetchone(), 5000)
    record(
        "auth: median of its own query through bare psycopg, the floor", median_ms(own_query), "ms"
    )
    samples = timed(lambda: auth(request), 5000)
    record("auth: median whole auth step incl. rate limit (5000)", median_ms(samples), "ms")
    bad = api_get({"Authorization": "Bearer nh_" + "x" * 38})
    record(
        "auth: median, malformed key (no query)",
        median_ms(timed(lambda: _refused(auth, bad), 5000)),
        "ms",
    )

    # The app plus two floors (bench/floor.py): the bare view with only the key query and the
    # rate-limit step that every API call needs, and with the usage event kept too.
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
    record("http: floor req/s, the same + usage event", floor["rps"])
    record("http: /api/user/profile req/s", profile["rps"])
    record("http: profile / bare throughput", profile["rps"] / bare["rps"])
    record("http: floor / bare, without the usage event", unrecorded["rps"] / bare["rps"])
    record("http: floor / bare, with it", floor["rps"] / bare["rps"])
    record("http: profile / floor throughput", profile["rps"] / floor["rps"])
    record("http: bare median latency", bare["p50_ms"], "ms")
    record("http: profile median latency", profile["p50_ms"], "ms")
    record("http: non-2xx responses", sum(run["non_2xx"] for run in (unrecorded, floor, profile)))

    # The account-wide limit's price: the same app with both buckets (the key's and the
    # account's, one Redis script) and with the key's alone (bench/one_bucket.py).
    with (
        gunicorn() as both_buckets,
        gunicorn(app="bench.one_bucket:application", port=PORT + 1) as key_bucket,
    ):
        # Both buckets before and after the key's alone in each round: 8 s runs on this
        # 2-core machine drift by ~10 %, and a one-sided order reads drift as a price.
        before, alone, after = interleaved(
            [
                (f"{both_buckets}/api/user/profile", key_header, None),
                (f"{key_bucket}/api/user/profile", key_header, None),
                (f"{both_buckets}/api/user/profile", key_header, None),
            ],
            rounds=4,
        )
    both = {name: (before[name] + after[name]) / 2 for name in before}
    both["non_2xx"] = before["non_2xx"] + after["non_2xx"]
    record("ratelimit: /api/user/profile req/s, key + account buckets", both["rps"])
    record("ratelimit: /api/user/profile req/s, key bucket alone", alone["rps"])
    record("ratelimit: both buckets / key bucket alone, throughput", both["rps"] / alone["rps"])
    record("ratelimit: median latency, both buckets", both["p50_ms"], "ms")
    record("ratelimit: median latency, key bucket alone", alone["p50_ms"], "ms")
    record("ratelimit: non-2xx responses", both["non_2xx"] + alone["non_2xx"])
    _moving(secret)


def _moving(secret: str, events: int = 20_000) -> None:
    """The `usage` process's work: `events` profile events waiting in the stream, moved to
    PostgreSQL by one move (256 per INSERT), as its loop does after a busy 200 ms."""
    import time

    from django.test import Client

    from usage import metering, stream

    client = Client(headers={"Authorization": f"Bearer {secret}", **PROXY_HEADERS})
    metering.move_waiting(most=None)
    assert client.get("/api/user/profile").status_code == 200
    stored = stream.events()
    assert stored is not None
    ((_, payload),) = stored.after("0-0", 1)
    for _ in range(events // 1000):
        with stored._client.pipeline(transaction=False) as pipe:
            for _ in range(1000):
                pipe.xadd(stream.STREAM, {"e": payload})
            pipe.execute()
    started = time.perf_counter()
    moved = metering.move_waiting(most=None)
    seconds = time.perf_counter() - started
    record("usage: events moved per second (one move, 256 per INSERT)", moved / seconds)
    record("usage: move per 256-event batch", seconds / (moved / 256) * 1000, "ms")


def _refused(auth, request) -> None:
    with suppress(Exception):  # the refusal is what is being timed
        auth(request)
