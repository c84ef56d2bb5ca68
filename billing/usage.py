"""Usage metering: one event per /api request made with a key, daily rollups, and the numbers
the usage page, the dashboard and `GET /api/usage` show.

Events are written in the request (one INSERT, before the response leaves) so none is lost
once the client has its answer. Every 30 s a beat task (`billing.roll_up_usage`) folds the new
events into the daily UsageRollup and UsageKeyRollup rows; the readers add the few events not
yet folded in, in the same statement, so the charts are exact at every moment while reading
only rollups plus the last half-minute of events.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from functools import cache
from typing import cast

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from billing.models import UsageEvent, UsageKeyRollup, UsageRollup
from nanostudio.http import ApiRequest, api_call, client_ip

logger = logging.getLogger("nanostudio.usage")

ROLL_UP_BATCH = 5000
PRUNE_BATCH = 10000
STATUS_CLASSES = (2, 4, 5)
_ROUTE_PARAM_RE = re.compile(r"<(?:\w+:)?(\w+)>")  # Django's route: <uuidstr:job_id>
_NINJA_PARAM_RE = re.compile(r"{(?:\w+:)?(\w+)}")  # ninja's path: {uuidstr:job_id}


# --- Recording -----------------------------------------------------------------------------


def endpoint_of(request: HttpRequest) -> str:
    """`POST /api/generate`, `GET /api/jobs/{job_id}`: the route, not the concrete path."""
    match = request.resolver_match
    path = "/" + _ROUTE_PARAM_RE.sub(r"{\1}", match.route) if match else request.path
    return f"{request.method} {path}"


def record(request: HttpRequest, response: HttpResponse) -> None:
    """Store the event for an /api request that presented a key we could attribute.

    A key that was refused (disabled, revoked, expired, an old secret past its grace) is
    recorded too: its owner should see that something still uses it.
    """
    call = api_call(request)
    key = call.attributed_key
    if key is None and response.status_code in (404, 405):
        # No route ran the key check (a mistyped path or method): check it here, so a
        # developer sees those calls in their log too.
        key = _presented_key(request)
    if key is None:
        return
    values = {
        "created_at": timezone.now(),
        "user": key.user_id,
        "key": key.pk,
        "endpoint": endpoint_of(request)[:80],
        "method": request.method or "",
        "status": response.status_code,
        "error_code": call.error_code,
        "credits": call.credits_charged,
        "latency_ms": round((time.perf_counter() - call.started) * 1000, 3),
        "ip": client_ip(request),
        "request_id": cast(ApiRequest, request).request_id,
        "job_id": call.job_id,
        "rolled_up": False,
    }
    sql, fields = _insert_event()
    params = [field.get_db_prep_save(values[field.name], connection) for field in fields]
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    except DatabaseError:
        # The request itself is done; a database that cannot take the event is logged loudly.
        logger.exception("usage event not recorded")


@cache
def _insert_event() -> tuple[str, list]:
    """The event INSERT, built once from the model: `objects.create()` took ~1.2 ms more of the
    web process's CPU per request on the bench VM (a model instance, the SQL compiler,
    RETURNING)."""
    fields = [
        UsageEvent._meta.get_field(name)
        for name in ("created_at", "user", "key", "endpoint", "method", "status", "error_code",
                     "credits", "latency_ms", "ip", "request_id", "job_id", "rolled_up")
    ]  # fmt: skip
    # Identifiers come from model metadata; every value is a parameter.
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(UsageEvent._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    return sql, fields


def _presented_key(request: HttpRequest):
    from apikeys.auth import credentials_from
    from apikeys.models import ApiKey, AuthFailure
    from nanostudio.errors import ApiError

    if "Authorization" not in request.headers:
        return None
    try:
        return ApiKey.objects.authenticate(credentials_from(request))
    except AuthFailure as failure:
        return failure.key
    except ApiError:
        return None


# --- Rolling up and pruning --------------------------------------------------------------


def _upsert_sql(table: str, group_columns: str) -> str:
    """Add a batch's totals to a rollup table's rows (created at zero when new)."""
    # Identifiers come from model metadata; every value is a parameter.
    placeholders = ", ".join(["%s"] * (len(group_columns.split(",")) + 3))
    return (
        f"INSERT INTO {table} ({group_columns}, requests, credits, latency_ms_total) "  # noqa: S608
        f"VALUES ({placeholders}) ON CONFLICT ({group_columns}) DO UPDATE SET "
        f"requests = {table}.requests + excluded.requests, "
        f"credits = {table}.credits + excluded.credits, "
        f"latency_ms_total = {table}.latency_ms_total + excluded.latency_ms_total"
    )


_UPSERT_ROLLUP_SQL = _upsert_sql(
    UsageRollup._meta.db_table, "user_id, day, key_id, endpoint, status_class"
)
_UPSERT_KEY_ROLLUP_SQL = _upsert_sql(
    UsageKeyRollup._meta.db_table, "user_id, day, key_id, status_class"
)


def roll_up(batch_size: int = ROLL_UP_BATCH) -> int:
    """Fold events not yet rolled up into the daily rollups; returns how many were folded.

    Each batch adds to both rollup tables and marks its events in one transaction; concurrent
    runs skip each other's locked events, so every event is counted exactly once.
    """
    folded = 0
    while True:
        with transaction.atomic():
            events = list(
                UsageEvent.objects.filter(rolled_up=False)
                .select_for_update(skip_locked=True)
                .order_by("id")
                .values_list(
                    "id", "created_at", "user_id", "key_id", "endpoint", "status", "credits",
                    "latency_ms",
                )[:batch_size]
            )  # fmt: skip
            if not events:
                return folded
            totals: dict[tuple, list] = defaultdict(lambda: [0, 0, 0.0])
            key_totals: dict[tuple, list] = defaultdict(lambda: [0, 0, 0.0])
            for _, created_at, user_id, key_id, endpoint, status, credits, latency in events:
                day = created_at.astimezone(UTC).date()
                for total in (
                    totals[(user_id, day, key_id, endpoint, status // 100)],
                    key_totals[(user_id, day, key_id, status // 100)],
                ):
                    total[0] += 1
                    total[1] += credits
                    total[2] += latency
            with connection.cursor() as cursor:
                # Sorted, so two concurrent runs lock shared rollup rows in the same order.
                for sql, groups in ((_UPSERT_ROLLUP_SQL, totals),
                                    (_UPSERT_KEY_ROLLUP_SQL, key_totals)):  # fmt: skip
                    cursor.executemany(
                        sql, [(*group, *total) for group, total in sorted(groups.items())]
                    )
            UsageEvent.objects.filter(id__in=[event[0] for event in events]).update(rolled_up=True)
        folded += len(events)
        if len(events) < batch_size:
            return folded


def uncharge(job_id) -> None:
    """Take a refunded job's credits off the usage of the request that was charged for it.

    Call inside the refund's transaction. The event row is locked first: a roll-up running
    now either skips it (and later folds in the corrected row) or has folded it already, and
    then the rollups are corrected instead.
    """
    event = UsageEvent.objects.select_for_update().filter(job_id=job_id, credits__gt=0).first()
    if event is None:
        return
    UsageEvent.objects.filter(pk=event.pk).update(credits=0)
    if event.rolled_up:
        group = {
            "user_id": event.user_id,
            "day": event.created_at.astimezone(UTC).date(),
            "key_id": event.key_id,
            "status_class": event.status // 100,
        }
        credits = F("credits") - event.credits
        UsageRollup.objects.filter(endpoint=event.endpoint, **group).update(credits=credits)
        UsageKeyRollup.objects.filter(**group).update(credits=credits)


def prune_events(now: datetime | None = None) -> int:
    """Delete events past USAGE_RETENTION_DAYS (the rollups stay); returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.USAGE_RETENTION_DAYS)
    deleted = 0
    while True:
        # The oldest events have the lowest ids, so this walks the primary key from the start.
        ids = list(
            UsageEvent.objects.filter(created_at__lt=cutoff, rolled_up=True)
            .order_by("id")
            .values_list("id", flat=True)[:PRUNE_BATCH]
        )
        if not ids:
            return deleted
        deleted += UsageEvent.objects.filter(id__in=ids).delete()[0]


# --- Reading ------------------------------------------------------------------------------


def day_start(day: date) -> datetime:
    return datetime.combine(day, dt_time.min, tzinfo=UTC)


def today() -> date:
    return timezone.now().astimezone(UTC).date()


@dataclass
class Counts:
    requests: int = 0
    errors: int = 0
    credits: int = 0
    latency_ms_total: float = 0.0
    by_class: dict[int, int] = field(default_factory=lambda: dict.fromkeys(STATUS_CLASSES, 0))

    def add(self, status_class: int, requests: int, credits: int, latency: float) -> None:
        self.requests += requests
        self.credits += credits
        self.latency_ms_total += latency
        if status_class >= 4:
            self.errors += requests
        self.by_class[status_class] = self.by_class.get(status_class, 0) + requests

    @property
    def average_latency_ms(self) -> float | None:
        return self.latency_ms_total / self.requests if self.requests else None


def daily(
    user_id: int,
    first: date,
    last: date,
    *,
    by: str | tuple[str, ...] = "key_id",
    key_id: int | None = None,
    endpoint: str | None = None,
) -> list[tuple[date, object, int, int, int, float]]:
    """Rows of (day, group, status class, requests, credits, latency total) for the user's
    UTC days `first`..`last`, grouped by `by` ("key_id", "endpoint", or both as a tuple, when
    the group is a tuple too), optionally filtered.

    One statement: the rollups plus the events not yet rolled up (a UNION ALL reads both in
    one snapshot, so an event being folded in right now is counted exactly once).
    """
    fields = (by,) if isinstance(by, str) else by
    # Without endpoints in the question, the per-key rollups answer it from far fewer rows.
    table = UsageRollup if endpoint or "endpoint" in fields else UsageKeyRollup
    rollups = table.objects.filter(user_id=user_id, day__gte=first, day__lte=last)
    pending = UsageEvent.objects.filter(
        user_id=user_id,
        rolled_up=False,
        created_at__gte=day_start(first),
        created_at__lt=day_start(last + timedelta(days=1)),
    )
    if key_id is not None:
        rollups, pending = rollups.filter(key_id=key_id), pending.filter(key_id=key_id)
    if endpoint:
        rollups, pending = rollups.filter(endpoint=endpoint), pending.filter(endpoint=endpoint)
    groups = {f"g{index}": F(name) for index, name in enumerate(fields)}
    if set(fields) == ({"key_id"} if table is UsageKeyRollup else {"key_id", "endpoint"}):
        # Rows are already one per group and day: read them as they are.
        rollups = rollups.values_list(
            "day", "status_class", "requests", "credits", "latency_ms_total", *fields
        ).order_by()
    else:
        rollups = (
            rollups.values("day", sc=F("status_class"), **groups)
            .annotate(n=Sum("requests"), c=Sum("credits"), l=Sum("latency_ms_total"))
            .values_list("day", "sc", "n", "c", "l", *groups)
            .order_by()
        )
    pending = (
        pending.values(d=TruncDate("created_at", tzinfo=UTC), sc=F("status") / 100, **groups)
        .annotate(n=Count("id"), c=Sum("credits"), l=Sum("latency_ms"))
        .values_list("d", "sc", "n", "c", "l", *groups)
        .order_by()
    )
    merged: dict[tuple, list] = {}
    for day, status_class, requests, credits, latency, *group in rollups.union(pending, all=True):
        if isinstance(day, str):  # SQLite returns the truncated date of a UNION as text
            day = date.fromisoformat(day)
        key = (day, group[0] if len(group) == 1 else tuple(group), int(status_class))
        row = merged.setdefault(key, [0, 0, 0.0])
        row[0] += requests
        row[1] += credits or 0
        row[2] += latency or 0.0
    return [(*group, *totals) for group, totals in sorted(merged.items(), key=_sort_key)]


def _sort_key(item: tuple) -> tuple:
    (day, group, status_class), _ = item
    return (day, str(group), status_class)


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def per_day(rows: Iterable[tuple], first: date, last: date) -> dict[date, Counts]:
    """Counts for every day of the range (empty days included), from `daily` rows."""
    days = {day: Counts() for day in days_between(first, last)}
    for day, _, status_class, requests, credits, latency in rows:
        days[day].add(status_class, requests, credits, latency)
    return days


def total(rows: Iterable[tuple]) -> Counts:
    counts = Counts()
    for _, _, status_class, requests, credits, latency in rows:
        counts.add(status_class, requests, credits, latency)
    return counts


def per_group(rows: Iterable[tuple]) -> dict[object, Counts]:
    groups: dict[object, Counts] = defaultdict(Counts)
    for _, group, status_class, requests, credits, latency in rows:
        groups[group].add(status_class, requests, credits, latency)
    return groups


def recent_events(
    user_id: int, *, key_id: int | None = None, endpoint: str | None = None, limit: int = 100
):
    events = UsageEvent.objects.filter(user_id=user_id)
    if key_id is not None:
        events = events.filter(key_id=key_id)
    if endpoint:
        events = events.filter(endpoint=endpoint)
    return events.order_by("-created_at", "-id")[:limit]


@cache  # the routes are fixed once the URLconf is loaded
def api_endpoints() -> tuple[str, ...]:
    """Every route of the API, as usage events name them."""
    from nanostudio.api import api

    endpoints = set()
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            route = _NINJA_PARAM_RE.sub(r"{\1}", f"/api{prefix}{path}".replace("//", "/"))
            for operation in path_view.operations:
                endpoints.update(f"{method} {route}" for method in operation.methods)
    return tuple(sorted(endpoints, key=lambda name: (name.split(" ")[1], name)))
