"""Reading usage: the numbers the usage page, the dashboard and `GET /api/usage` show, from
the daily rollups plus the events not folded in yet, in one statement (exact at every moment).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from functools import cache
from typing import Any

from django.db import connections
from django.db.models import Count, F, QuerySet, Sum
from django.db.models.functions import TruncDate

from billing.periods import day_start
from usage.metering import move_waiting
from usage.models import UsageEvent, UsageKeyRollup, UsageRollup

STATUS_CLASSES = (2, 4, 5)

# (day, group, status class, requests, credits, latency total): one `daily` row.
Row = tuple[date, Any, int, int, int, float]


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
) -> list[Row]:
    """Rows of (day, group, status class, requests, credits, latency total) for the user's
    UTC days `first`..`last`, ordered by the first three, grouped by `by` ("key_id",
    "endpoint", or both as a tuple, when the group is a tuple too), optionally filtered.

    One statement: the rollups plus the events not yet rolled up (a UNION ALL reads both in
    one snapshot, so an event being folded in right now is counted exactly once), after the
    events waiting in the stream are moved.
    """
    move_waiting()
    fields = (by,) if isinstance(by, str) else by
    # Without endpoints in the question, the per-key rollups answer it from far fewer rows.
    table = UsageRollup if endpoint or "endpoint" in fields else UsageKeyRollup
    # Any: the plugin types each table's queryset apart, and `values_list` reshapes them below.
    rollups: QuerySet[Any, Any] = table.objects.filter(
        user_id=user_id, day__gte=first, day__lte=last
    )
    pending: QuerySet[Any, Any] = UsageEvent.objects.filter(
        user_id=user_id,
        rolled_up=False,
        created_at__gte=day_start(first),
        created_at__lt=day_start(last + timedelta(days=1)),
    )
    if key_id is not None:
        rollups, pending = rollups.filter(key_id=key_id), pending.filter(key_id=key_id)
    if endpoint:
        rollups, pending = rollups.filter(endpoint=endpoint), pending.filter(endpoint=endpoint)
    groups = {f"group_{index}": F(name) for index, name in enumerate(fields)}
    if set(fields) == ({"key_id"} if table is UsageKeyRollup else {"key_id", "endpoint"}):
        # Rows are already one per group and day: read them as they are.
        rollups = rollups.values_list(
            "day", "status_class", "requests", "credits", "latency_ms_total", *fields
        ).order_by()
    else:
        rollups = (
            rollups.values("day", status_group=F("status_class"), **groups)
            .annotate(
                n_requests=Sum("requests"),
                n_credits=Sum("credits"),
                latency=Sum("latency_ms_total"),
            )
            .values_list("day", "status_group", "n_requests", "n_credits", "latency", *groups)
            .order_by()
        )
    pending = (
        pending.values(
            utc_day=TruncDate("created_at", tzinfo=UTC), status_group=F("status") / 100, **groups
        )
        .annotate(n_requests=Count("id"), n_credits=Sum("credits"), latency=Sum("latency_ms"))
        .values_list("utc_day", "status_group", "n_requests", "n_credits", "latency", *groups)
        .order_by()
    )
    # The two parts can share a (day, group, status class): an event's day before its
    # roll-up is done. The database adds them up and orders the rows; the ORM cannot group a
    # UNION, so its SQL is wrapped here (its columns are in the order of `values_list`). The
    # counts are summed as integers, as the rollups store them (a sum of bigints would be
    # summed as numeric, slower).
    union_sql, params = rollups.union(pending, all=True).query.sql_with_params()
    names = [f"g{index}" for index in range(len(fields))]
    columns = ", ".join(["day", *names, "status_class"])
    # Django's own SQL, its values passed apart, and names made here: nothing from outside.
    sql = (
        f"WITH u (day, status_class, requests, credits, latency, {', '.join(names)}) "  # noqa: S608
        f"AS ({union_sql}) SELECT {columns}, SUM(CAST(requests AS INTEGER)), "
        f"SUM(CAST(credits AS INTEGER)), SUM(latency) FROM u "
        f"GROUP BY {columns} ORDER BY {columns}"
    )
    with connections[rollups.db].cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    rows: list[Row] = []
    for day, *group, status_class, requests, credits, latency in found:
        if isinstance(day, str):  # SQLite returns the dates of a UNION as text
            day = date.fromisoformat(day)
        rows.append(
            (
                day,
                group[0] if len(group) == 1 else tuple(group),
                int(status_class),
                requests,
                credits or 0,
                latency or 0.0,
            )
        )
    return rows


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def per_day(rows: Iterable[Row], first: date, last: date) -> dict[date, Counts]:
    """Counts for every day of the range (empty days included), from `daily` rows."""
    days = {day: Counts() for day in days_between(first, last)}
    for day, _, status_class, requests, credits, latency in rows:
        days[day].add(status_class, requests, credits, latency)
    return days


def total(rows: Iterable[Row]) -> Counts:
    counts = Counts()
    for _, _, status_class, requests, credits, latency in rows:
        counts.add(status_class, requests, credits, latency)
    return counts


def per_group(rows: Iterable[Row]) -> dict[object, Counts]:
    groups: dict[object, Counts] = defaultdict(Counts)
    for _, group, status_class, requests, credits, latency in rows:
        groups[group].add(status_class, requests, credits, latency)
    return groups


@cache  # the API's operations are fixed once it is loaded
def api_endpoints() -> tuple[str, ...]:
    """Every operation of the API as usage events name them ("GET /api/jobs/{job_id}"), from
    its published schema."""
    from nanostudio.api import api  # the API mounts this app's router: import it late

    paths = api.get_openapi_schema()["paths"]
    endpoints = {
        f"{method.upper()} {path}" for path, methods in paths.items() for method in methods
    }
    return tuple(sorted(endpoints, key=lambda name: (name.split(" ")[1], name)))


_PATH_PARAM_RE = re.compile(r"\{(?:\w+:)?(\w+)\}")  # ninja's "{uuidstr:job_id}"


@cache  # as api_endpoints
def endpoint_scopes() -> dict[str, tuple[str, ...]]:
    """Each operation's accepted scopes (any one of them will do; empty: any valid key), by
    its usage-event name, from the API's own authentication declarations."""
    from nanostudio.api import api

    api.get_openapi_schema()  # builds the routers' operations, once
    scopes: dict[str, tuple[str, ...]] = {}
    for prefix, router in api._routers:
        for path, view in router.path_operations.items():
            for operation in view.operations:
                auths = operation.auth_callbacks or [router.auth]
                needed = tuple(scope for auth in auths for scope in getattr(auth, "scopes", ()))
                route = _PATH_PARAM_RE.sub(r"{\1}", f"/api{prefix}{path}")
                for method in operation.methods:
                    scopes[f"{method} {route}"] = needed
    return scopes
