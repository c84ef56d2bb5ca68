"""Usage metering: one event per /api request made with a key, and its daily rollups (the
numbers are read by usage.reports).

An event is kept before the response leaves, so none is lost once the client has its answer.
In production mode it is appended to a Redis stream (usage.stream), one command; `manage.py
move_usage_events` (the Procfile's `usage` process) moves the stream to PostgreSQL in batches,
and whatever reads events first moves those still waiting (`move_waiting`), so a page shows the
request just answered. In embedded mode, or when the stream's Redis cannot take it, the event
is written to the database in the request, and requests that finish together share one INSERT
and one commit (_GroupWriter).

Every 30 s a beat task (`usage.roll_up`) folds the new events into the daily UsageRollup and
UsageKeyRollup rows; the readers add the few events not yet folded in, in the same statement,
so the charts are exact at every moment while reading only rollups plus the last half-minute
of events.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections import defaultdict
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Field
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from nanostudio import inserts
from nanostudio.http import ApiRequest, api_call, client_ip
from nanostudio.middleware import KEY_LIKE_RE
from usage import stream
from usage.models import StreamMark, UsageEvent, UsageKeyRollup, UsageRollup

if TYPE_CHECKING:
    from apikeys.models import ApiKey

logger = logging.getLogger("nanostudio.usage")

ROLL_UP_BATCH = 5000
WRITE_BATCH = 256  # events per INSERT at most (18 parameters each)
READER_MOST = 8 * WRITE_BATCH  # events a reader moves at most before it reads
PRUNE_BATCH = 10000
STATUS_CLASSES = (2, 4, 5)
_ROUTE_PARAM_RE = re.compile(r"<(?:\w+:)?(\w+)>")  # Django's route: <uuidstr:job_id>


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
    _keep(
        {
            "created_at": timezone.now(),
            "user": key.user_id,
            "key": key.pk,
            "endpoint": endpoint_of(request)[:80],
            "method": request.method or "",
            # A key pasted into a URL is never stored (the query string's are refused anyway).
            "path": KEY_LIKE_RE.sub(r"\1[redacted]", request.get_full_path())[:200],
            "status": response.status_code,
            "error_code": call.error_code,
            "credits": call.credits_charged,
            "latency_ms": round((time.perf_counter() - call.started) * 1000, 3),
            "ip": client_ip(request),
            "request_id": cast(ApiRequest, request).request_id,
            "job_id": call.job_id,
            "rolled_up": False,
            "previous_secret": call.previous_secret,
            "rate_remaining": _header_int(response, "X-RateLimit-Remaining"),
            "rate_limit": _header_int(response, "X-RateLimit-Limit"),
            "server_timing": response.get("Server-Timing", "")[:200],
        }
    )


def _keep(values: dict[str, Any]) -> None:
    """Append the event to the stream, or write it to the database: in embedded mode, or when
    the stream's Redis cannot take it (the request is answered all the same)."""
    events = stream.events()
    if events is not None:
        try:
            events.append(json.dumps([values[name] for name in FIELDS], default=str))
            return
        except events.errors:
            logger.warning("usage stream unreachable: the event is written to the database")
    _writer.write(_row(values))


def move_waiting(batch: int = WRITE_BATCH, most: int | None = READER_MOST) -> int:
    """Move the events waiting in the stream to the database, oldest first, `batch` per INSERT
    and at most `most` (None: all); returns how many. Call it before reading events
    (usage.reports, usage.requestlog, a refund): the `usage` process keeps the stream short,
    and if it is down the bound keeps a page from moving a long backlog by itself.

    Each batch is inserted, and the stream's mark moved past it, in one transaction; the mark's
    row lock makes concurrent movers take turns. The moved entries are trimmed once that
    transaction commits: one left behind (a mover stopped in between) lies behind the mark and
    is never moved again. Inside a caller's transaction (a refund), its rollback leaves the
    entries in the stream for the next move.
    """
    events = stream.events()
    if events is None:
        return 0
    moved = 0
    try:
        if not events.waiting():  # one round trip, the usual answer to a reader
            return 0
        while True:
            with transaction.atomic():
                mark, _ = StreamMark.objects.select_for_update().get_or_create(stream=stream.STREAM)
                count = batch if most is None else min(batch, most - moved)
                entries = events.after(mark.last_id, count)
                if entries:
                    _insert(_of_live_keys([json.loads(e) for _, e in entries]), from_stream=True)
                    mark.last_id = entries[-1][0]
                    mark.save(update_fields=["last_id"])
                transaction.on_commit(partial(events.trim_through, mark.last_id), robust=True)
            moved += len(entries)
            if len(entries) < count or moved == most:
                return moved
    except events.errors:
        logger.warning("usage stream unreachable: its waiting events are moved later")
        return moved


def _of_live_keys(entries: list[list[Any]]) -> list[list[Any]]:
    """The stream's entries as rows to insert, but for those whose key was deleted since (with
    its user, or alone): the foreign key would refuse them only at commit, failing the whole
    batch. A key deleted after this check fails the commit, and the next move drops it here.

    The entries' values go to PostgreSQL as they are: JSON's numbers, booleans and nulls, and
    text that each column reads as its own type (the time, the job's UUID, the IP address), so
    no field converts them one by one (that was most of a move's time).
    """
    from apikeys.models import ApiKey

    live = set(
        ApiKey.objects.filter(pk__in={e[_KEY] for e in entries}).values_list("pk", flat=True)
    )
    for entry in entries:
        if entry[_KEY] not in live:
            logger.warning("usage event of a deleted key dropped: %s", entry[_REQUEST_ID])
    return [entry for entry in entries if entry[_KEY] in live]


def _header_int(response: HttpResponse, name: str) -> int | None:
    value = response.get(name, "")
    return int(value) if value.isdigit() else None


class _Pending:
    __slots__ = ("ready", "row", "written")

    def __init__(self, row: list[Any]) -> None:
        self.row = row
        self.ready = threading.Event()
        self.written = False


class _GroupWriter:
    """Group commit for one process's events: the requests that finish while an INSERT runs
    wait for it, and then go to the database together, in one INSERT and one commit.

    Each request still returns only after its own event is committed. The first request to
    find no INSERT running writes (on its own connection); the others wait; when its INSERT is
    done it hands the next batch to the first request that waited, so no request writes for
    more than its own batch. Alone (a test, a quiet server) a request writes its own event
    at once, as a plain INSERT would.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[_Pending] = []
        self._writing = False

    def write(self, row: list[Any]) -> None:
        pending = _Pending(row)
        with self._lock:
            self._waiting.append(pending)
            lead = not self._writing
            self._writing = True
        if not lead:
            pending.ready.wait()
            if pending.written:
                return
        self._lead()

    def _lead(self) -> None:
        with self._lock:
            batch = self._waiting[:WRITE_BATCH]
            del self._waiting[:WRITE_BATCH]
        try:
            _insert([pending.row for pending in batch])
        finally:
            for pending in batch:
                pending.written = True
                pending.ready.set()
            with self._lock:
                if self._waiting:
                    self._waiting[0].ready.set()  # not written: it leads the next batch
                else:
                    self._writing = False


_writer = _GroupWriter()


def _row(values: dict[str, Any]) -> list[Any]:
    fields = _fields()
    return inserts.prepared(fields, [values[field.name] for field in fields])


def _insert(rows: list[list[Any]], from_stream: bool = False) -> None:
    """Write the events; one the database refuses costs only itself. Rows `from_stream` are the
    stream's values, written inside move_waiting's transaction (each try in a savepoint);
    the others are prepared by the fields (`_row`), in the request."""
    try:
        with transaction.atomic() if from_stream else nullcontext(), connection.cursor() as cursor:
            if from_stream:
                cursor.execute(_unnest_sql(), [list(column) for column in zip(*rows, strict=True)])
            else:
                cursor.execute(_insert_sql(len(rows)), [value for row in rows for value in row])
    except DatabaseError:
        if len(rows) > 1:
            for row in rows:  # so one bad event costs only itself
                _insert([row], from_stream)
            return
        # The request itself is done; a database that cannot take the event is logged loudly.
        logger.exception("usage event not recorded")


# An event's fields, in the order the stream's entries list them and the INSERT writes them.
FIELDS = (
    "created_at",
    "user",
    "key",
    "endpoint",
    "method",
    "path",
    "status",
    "error_code",
    "credits",
    "latency_ms",
    "ip",
    "request_id",
    "job_id",
    "rolled_up",
    "previous_secret",
    "rate_remaining",
    "rate_limit",
    "server_timing",
)


_KEY, _REQUEST_ID = FIELDS.index("key"), FIELDS.index("request_id")


@cache
def _fields() -> tuple[Field[Any, Any], ...]:
    # Concrete fields, not relations: "user" is the user_id column.
    return tuple(cast(Field[Any, Any], UsageEvent._meta.get_field(name)) for name in FIELDS)


@cache
def _unnest_sql() -> str:
    """The INSERT of a batch of the stream's events: one array per column, so the statement is
    short and the same for every batch (psycopg parses a long VALUES list anew each time)."""
    return inserts.unnest_sql(UsageEvent, _fields())


@cache
def _insert_sql(rows: int) -> str:
    """The INSERT of `rows` events, built once from the model: `objects.create()` took ~1.2 ms
    more of the web process's CPU per request on the bench VM (a model instance, the SQL
    compiler, RETURNING)."""
    return inserts.sql(UsageEvent, _fields(), rows)


def _presented_key(request: HttpRequest) -> ApiKey | None:
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
    runs skip each other's locked events, so every event is counted exactly once. The events
    waiting in the stream are moved first, so every request answered so far is folded in.
    """
    move_waiting(most=None)
    folded = 0
    while True:
        with transaction.atomic():
            events = list(
                UsageEvent.objects.filter(rolled_up=False)
                .select_for_update(skip_locked=True)
                .order_by("id")
                .values_list(
                    "id",
                    "created_at",
                    "user_id",
                    "key_id",
                    "endpoint",
                    "status",
                    "credits",
                    "latency_ms",
                )[:batch_size]
            )
            if not events:
                return folded
            # (day, user, key[, endpoint], status class) → [requests, credits, latency]
            totals: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0.0])
            key_totals: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0.0])
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
                for sql, groups in (
                    (_UPSERT_ROLLUP_SQL, totals),
                    (_UPSERT_KEY_ROLLUP_SQL, key_totals),
                ):
                    cursor.executemany(
                        sql, [(*group, *total) for group, total in sorted(groups.items())]
                    )
            UsageEvent.objects.filter(id__in=[event[0] for event in events]).update(rolled_up=True)
        folded += len(events)
        if len(events) < batch_size:
            return folded


def uncharge(job_id: uuid.UUID) -> None:
    """Take a refunded job's credits off the usage of the request that was charged for it.

    Call inside the refund's transaction. The event row is locked first: a roll-up running
    now either skips it (and later folds in the corrected row) or has folded it already, and
    then the rollups are corrected instead.
    """
    move_waiting(most=None)  # the charged request's event may still be in the stream
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
