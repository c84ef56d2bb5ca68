"""Prometheus metrics, safe under gunicorn's and Celery's many processes.

With PROMETHEUS_MULTIPROC_DIR set (the environment of web and workers, an empty folder each
start), every process writes its counters and histograms to files there and `/metrics` adds
them up; without it, the one process's own registry answers. Gauges that describe shared state
(queue depth, jobs waiting, roll-up lag) are read at scrape time instead, so they are right
whichever process is asked. `/metrics` answers only with `Authorization: Bearer
$METRICS_TOKEN`, and not at all (404) while METRICS_TOKEN is unset.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REQUESTS = Counter(
    "nano_http_requests_total", "HTTP requests answered.", ["route", "method", "status"]
)
LATENCY = Histogram(
    "nano_http_request_duration_seconds",
    "Time to answer, by route and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
JOBS_FINISHED = Counter("nano_jobs_finished_total", "Jobs ended.", ["kind", "status"])
JOB_DURATION = Histogram(
    "nano_job_duration_seconds",
    "From submit to end, by kind and end state.",
    ["kind", "status"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
CREDITS_DEBITED = Counter("nano_credits_debited_total", "Credits reserved by accepted jobs.")


def after_commit(record: Callable[[], None]) -> None:
    """Count what the transaction did once it is committed (nothing if it rolls back)."""
    transaction.on_commit(record, robust=True)


class MetricsMiddleware:
    """Counts every request by its route (the URL pattern, never the concrete path: a label
    per job id would grow without bound) and times it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        route = "/" + match.route if match else "(unmatched)"
        method = request.method or ""
        status = str(response.status_code)
        REQUESTS.labels(route, method, status).inc()
        LATENCY.labels(route, method, status).observe(time.perf_counter() - started)
        return response


class SharedState(Collector):
    """Read at scrape time: jobs waiting and running, each job queue's depth on the broker,
    the usage events waiting in their stream, and how far the usage roll-ups lag behind."""

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # so registering it does not collect (and query) at import

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.apps import apps

        try:
            job = apps.get_model("studio", "Job")
            event = apps.get_model("usage", "UsageEvent")
            jobs = GaugeMetricFamily("nano_jobs", "Jobs not ended yet.", labels=["status"])
            for status in ("queued", "running"):
                jobs.add_metric([status], job.objects.filter(status=status).count())
            yield jobs
            oldest = (
                event.objects.filter(rolled_up=False)
                .order_by("created_at")
                .values_list("created_at", flat=True)
                .first()
            )
            lag = GaugeMetricFamily(
                "nano_usage_rollup_lag_seconds", "Age of the oldest event not rolled up."
            )
            lag.add_metric([], time.time() - oldest.timestamp() if oldest else 0.0)
            yield lag
        except DatabaseError:
            pass  # /readyz says the database is down; the rest still answers
        if settings.REDIS_URL:
            yield from _backlogs()


_SHARED = SharedState()
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    REGISTRY.register(_SHARED)


def _backlogs() -> Iterator[GaugeMetricFamily]:
    import redis

    depth = GaugeMetricFamily("nano_queue_depth", "Messages waiting, by queue.", labels=["queue"])
    waiting = GaugeMetricFamily(
        "nano_usage_events_waiting", "Usage events in their Redis stream, not moved yet."
    )
    try:
        client = redis.Redis.from_url(settings.REDIS_BROKER_URL, socket_timeout=1)
        for queue in settings.CELERY_TASK_QUEUES:
            depth.add_metric([queue.name], client.llen(queue.name))
        client = redis.Redis.from_url(settings.REDIS_USAGE_URL, socket_timeout=1)
        waiting.add_metric([], client.xlen(settings.USAGE_STREAM))
    except redis.RedisError:
        return
    yield depth
    yield waiting


def _registry() -> Any:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY  # this process's own numbers, and the shared state
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(_SHARED)
    return registry


def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("Metrics are off: set METRICS_TOKEN.")
    sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(sent.encode(), token.encode()):
        return HttpResponse("Send Authorization: Bearer $METRICS_TOKEN.\n", status=401)
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
