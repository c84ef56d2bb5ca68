"""`make bench ARGS=requests`."""

from __future__ import annotations

import statistics
from datetime import timedelta
from typing import Any

from bench.harness import OUT, PROXY_HEADERS, record, server_samples
from bench.seed import seed_usage

REPEAT = 30


def _filters(user: Any, now: Any) -> dict[str, dict[str, str]]:
    """Each filter of the request log, and some combinations, as the page's query string."""
    from apikeys.models import ApiKey
    from usage.models import UsageEvent

    key = ApiKey.objects.filter(user=user).order_by("pk").first()
    assert key is not None
    submit = (
        UsageEvent.objects.filter(user=user, endpoint="POST /api/generate", status=200)
        .values("request_id", "job_id")
        .first()
    )
    assert submit is not None
    week = now - timedelta(days=60)
    return {
        "no filter": {},
        "last 24 h": {"since": f"{now - timedelta(days=1):%Y-%m-%dT%H:%M}"},
        "a week 60 days ago": {
            "since": f"{week:%Y-%m-%dT%H:%M}",
            "until": f"{week + timedelta(days=7):%Y-%m-%dT%H:%M}",
        },
        "one key": {"key": str(key.pk)},
        "common endpoint": {"endpoint": "POST /api/generate"},
        "rare endpoint": {"endpoint": "GET /api/usage"},
        "endpoint never called": {"endpoint": "DELETE /api/keys/{key_id}"},
        "2xx": {"status": "2xx"},
        "4xx": {"status": "4xx"},
        "5xx": {"status": "5xx"},
        "status 429": {"status": "429"},
        "error code INTERNAL_ERROR": {"error_code": "INTERNAL_ERROR"},
        "common IP": {"ip": "10.0.0.3"},
        "rare IP": {"ip": "203.0.113.7"},
        "request id": {"q": submit["request_id"]},
        "job id": {"q": str(submit["job_id"])},
        "key + 5xx": {"key": str(key.pk), "status": "5xx"},
        "rare IP + last 30 days": {
            "ip": "203.0.113.7",
            "since": f"{now - timedelta(days=30):%Y-%m-%dT%H:%M}",
        },
    }


def _quantiles(samples: list[tuple[float, float]]) -> tuple[float, float, float]:
    totals = [total for total, _ in samples]
    return (
        statistics.median(totals),
        statistics.quantiles(totals, n=20)[-1],
        statistics.median(database for _, database in samples),
    )


def run() -> None:
    """The request log and inspector over 10 million events: every filter, a typical and the
    heavy user, with EXPLAIN ANALYZE of the heavy user's queries."""
    from urllib.parse import urlencode

    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from accounts.models import User
    from usage import requestlog
    from usage.models import UsageEvent
    from usage.views import RequestLogForm

    seconds = seed_usage()
    if seconds is not None:
        record("requests: seeding 10M events + rollups", seconds, "s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_usageevent")
    now = timezone.now()
    plans = []
    for label, email in (("typical", "user5000@usage.bench"), ("heavy", "user0@usage.bench")):
        user = User.objects.get(email=email)
        record(f"requests: {label} user's events", UsageEvent.objects.filter(user=user).count())
        client = Client(headers=PROXY_HEADERS, secure=True)
        client.force_login(user)
        worst = 0.0
        for name, query in _filters(user, now).items():
            path = "/usage/requests/?" + urlencode(query)
            server_samples(client, path, 10)  # warm up
            median, p95, database = _quantiles(server_samples(client, path, REPEAT))
            worst = max(worst, median)
            record(
                f"requests: log, {label}, {name}: median / p95", f"{median:.1f} / {p95:.1f}", "ms"
            )
            record(f"requests: log, {label}, {name}: database part", database, "ms")
            if label == "heavy":
                form = RequestLogForm(user, _querydict(query))
                assert form.is_valid(), form.errors
                plan = requestlog.events(user.pk, form.log_filter())[:51].explain(analyze=True)
                plans.append(f"-- {name}: {query}\n{plan}\n")
        record(f"requests: log, {label}: slowest filter's median", worst, "ms")
        # The next page, from a cursor 60 days back: as fast as the first.
        old = UsageEvent.objects.filter(user=user, created_at__lt=now - timedelta(days=60))
        row = old.order_by("-created_at", "-id").first()
        assert row is not None
        from nanostudio import keyset

        path = "/usage/requests/?" + urlencode({"cursor": keyset.encode(row.created_at, row.pk)})
        median, p95, _ = _quantiles(server_samples(client, path, REPEAT))
        record(
            f"requests: log, {label}, a page 60 days deep: median / p95",
            f"{median:.1f} / {p95:.1f}",
            "ms",
        )
        # The inspector of a submit.
        submit = UsageEvent.objects.filter(user=user, endpoint="POST /api/generate").first()
        assert submit is not None
        path = f"/usage/requests/{submit.request_id}/"
        server_samples(client, path, 3)
        median, p95, database = _quantiles(server_samples(client, path, REPEAT))
        record(f"requests: inspector, {label}: median / p95", f"{median:.1f} / {p95:.1f}", "ms")
        record(f"requests: inspector, {label}: database part", database, "ms")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "requestlog-explain.txt").write_text("\n".join(plans))
    print(f"  EXPLAIN ANALYZE of the heavy user's queries: {OUT / 'requestlog-explain.txt'}")
    connection.close()


def _querydict(query: dict[str, str]) -> Any:
    from django.http import QueryDict

    data = QueryDict(mutable=True)
    data.update(query)
    return data
