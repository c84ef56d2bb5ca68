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

    def add_counts(self, other: Counts) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.credits += other.credits
        self.latency_ms_total += other.latency_ms_total
        for status_class, requests in other.by_class.items():
            self.by_class[status_class] = self.by_class.get(status_class, 0) + requests

    @property
    def average_latency_ms(self) -> float | None:
        return self.latency_ms_total / self.requests if self.requests else None


def _union(
    user_id: int,
    first: date,
    last: date,
    fields: tuple[str, ...],
    key_id: int | None,
    endpoint: str | None,
) -> tuple[str, list[Any], str]:
    """A common table `u` (day, status_class, requests, credits, latency, g0, g1, ...): the
    rollups plus the events not yet rolled up, grouped by `fields`, with its parameters and
    the database to ask. A UNION ALL reads both in one snapshot, so an event being folded in
    right now is counted exactly once; the events waiting in the stream are moved first.
    """
    move_waiting()
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
    # The ORM cannot group a UNION, so its SQL is wrapped by the callers (its columns are in
    # the order of `values_list`): Django's own SQL, its values passed apart, and names made
    # here, nothing from outside.
    union_sql, params = rollups.union(pending, all=True).query.sql_with_params()
    names = "".join(f", g{index}" for index in range(len(fields)))
    sql = f"WITH u (day, status_class, requests, credits, latency{names}) AS ({union_sql})"
    return sql, list(params), rollups.db


# The two parts can share a (day, group, status class): an event's day before its roll-up is
# done, so the database adds them up. The counts are summed as integers, as the rollups store
# them (a sum of bigints would be summed as numeric, slower).
SUMS = "SUM(CAST(requests AS INTEGER)), SUM(CAST(credits AS INTEGER)), SUM(latency)"
# A row per day and a row per group (each with its status class), the other column empty.
BY_DAY_AND_GROUP = (  # constants only
    f"SELECT day, NULL, status_class, {SUMS} FROM u GROUP BY day, status_class "  # noqa: S608
    f"UNION ALL SELECT NULL, g0, status_class, {SUMS} FROM u GROUP BY g0, status_class"
)


def _day(value: date | str) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value  # SQLite: text


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
    "endpoint", or both as a tuple, when the group is a tuple too; () for none, the group
    then ()), optionally filtered.
    One statement (see _union).
    """
    fields = (by,) if isinstance(by, str) else by
    union, params, db = _union(user_id, first, last, fields, key_id, endpoint)
    columns = ", ".join(["day", *(f"g{index}" for index in range(len(fields))), "status_class"])
    grouping = f"GROUP BY {columns} ORDER BY {columns}"
    sql = f"{union} SELECT {columns}, {SUMS} FROM u {grouping}"  # noqa: S608 (see _union)
    with connections[db].cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    return [
        (
            _day(day),
            group[0] if len(group) == 1 else tuple(group),
            int(status_class),
            requests,
            credits or 0,
            latency or 0.0,
        )
        for day, *group, status_class, requests, credits, latency in found
    ]


def days_and_groups(
    user_id: int,
    first: date,
    last: date,
    *,
    by: str = "key_id",
    key_id: int | None = None,
    endpoint: str | None = None,
) -> tuple[dict[date, Counts], dict[object, Counts]]:
    """Counts per day (every day of the range) and per group, of the rows `daily` would
    return, added up by the database in one statement: a row per day and a row per group (and
    status class), rather than one per day and group, for a page that shows the two apart."""
    union, params, db = _union(user_id, first, last, (by,), key_id, endpoint)
    sql = f"{union} {BY_DAY_AND_GROUP}"
    with connections[db].cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    days = {day: Counts() for day in days_between(first, last)}
    groups: dict[object, Counts] = defaultdict(Counts)
    for day, group, status_class, requests, credits, latency in found:
        counts = groups[group] if day is None else days[_day(day)]
        counts.add(int(status_class), requests, credits or 0, latency or 0.0)
    return days, dict(groups)


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
