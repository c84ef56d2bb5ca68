"""The floor under `/api/user/profile`, for `make bench`: the bare view plus only the work that
every metered API call must do — look the key up (one query), take the rate-limit step (one
Redis call) and keep the usage event (one Redis command) — with our own functions for each, but
without the API framework around them. Served beside the real app, it shows how much of the
profile's cost is ours to cut and how much is the machine's price for three round trips.
`/floor/round-trips/<n>` does the same for a job submit: the bare view plus n round trips, and
`/floor/submit-replay` the bare view plus the very statements and Redis commands of a real submit,
replayed with a fresh job id."""

from __future__ import annotations

import itertools
import os
import pickle
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanostudio.settings")

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path

application = get_wsgi_application()
CAPTURE = Path(__file__).resolve().parent.parent / "var" / "bench" / "submit-round-trips.pickle"
settings.ROOT_URLCONF = __name__


def floor(request: HttpRequest, record: bool = True) -> JsonResponse:
    from apikeys import ratelimit
    from apikeys.auth import credentials_from
    from apikeys.models import ApiKey
    from nanostudio.http import ApiCall, ApiRequest
    from usage import metering

    call = ApiCall()
    cast(ApiRequest, request).api = call
    call.key = ApiKey.objects.authenticate(credentials_from(request))
    ratelimit.check(ratelimit.Bucket(f"key:{call.key.pk}", 10_000_000, 10_000_000))
    response = JsonResponse({"status": "ok"})
    if record:
        metering.record(request, response)
    return response


def round_trips(request: HttpRequest, count: int) -> JsonResponse:
    """The bare view plus `count` of the cheapest database round trips there are."""
    with connection.cursor() as cursor:
        for _ in range(count):
            cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


_captured: Iterator[dict] | None = None
_capture_lock = threading.Lock()
_redis = redis.Redis.from_url(settings.REDIS_LIMITER_URL)


def _fresh(value, ids: dict[str, str]):
    """A captured parameter with every job id in it replaced by this request's own."""
    if isinstance(value, uuid.UUID):
        return uuid.UUID(ids.setdefault(str(value), str(uuid.uuid4())))
    if isinstance(value, str):
        for old, new in ids.items():
            value = value.replace(old, new)
    return value


# What a leaner submit could leave out: reserve()'s savepoint (it lets a caller go on after a
# refused charge) and the query for the template's plan list (it could join the template's).
AVOIDABLE = ("SAVEPOINT", "RELEASE SAVEPOINT", 'SELECT "billing_plan"')


def submit_replay(request: HttpRequest, lean: bool = False) -> JsonResponse:
    """The bare view plus one real async submit's own statements and Redis commands (as
    `make bench` recorded them), replayed with a fresh job id: the database's and Redis's work
    for a submit, with none of the Python that decides what to send. `lean` leaves AVOIDABLE out."""
    global _captured
    with _capture_lock:
        if _captured is None:  # written by bench/run.py: one submit per bench user
            _captured = itertools.cycle(pickle.loads(CAPTURE.read_bytes()))
        captured = next(_captured)
    ids: dict[str, str] = {}
    in_transaction = False
    with connection.cursor() as cursor:
        for sql, params, atomic in captured["statements"]:
            if lean and sql.startswith(AVOIDABLE):
                continue
            if atomic != in_transaction:
                cursor.execute("BEGIN" if atomic else "COMMIT")
                in_transaction = atomic
            if params is not None:  # the job's UUID comes before the paths that contain it
                params = [_fresh(value, ids) for value in params]
            cursor.execute(sql, params)
        if in_transaction:
            cursor.execute("COMMIT")
    connection_ = _redis.connection_pool.get_connection("EVALSHA")
    try:
        for command in captured["redis"]:
            connection_.send_packed_command(command)
            connection_.read_response()
    finally:
        _redis.connection_pool.release(connection_)
    return JsonResponse({"status": "ok"})


from nanostudio.urls import urlpatterns as app_urlpatterns  # noqa: E402

urlpatterns = [
    path("floor", floor),
    # What SPEC and the API-key issue require of every call (the key's query, the rate-limit
    # step) without keeping the usage event.
    path("floor/unrecorded", floor, {"record": False}),
    path("floor/round-trips/<int:count>", round_trips),
    path("floor/submit-replay", submit_replay),
    path("floor/submit-replay/lean", submit_replay, {"lean": True}),
    *app_urlpatterns,
]
