"""The floor under `/api/user/profile`, for `make bench`: the bare view plus only the work that
every metered API call must do — look the key up (one query), take the rate-limit step (one
Redis call) and record the usage event (one insert) — with our own functions for each, but
without the API framework around them. Served beside the real app, it shows how much of the
profile's cost is ours to cut and how much is the machine's price for three round trips.
`/floor/round-trips/<n>` does the same for a job submit: the bare view plus n round trips."""

from __future__ import annotations

import os
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanostudio.settings")

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path

application = get_wsgi_application()
settings.ROOT_URLCONF = __name__


def floor(request: HttpRequest, record: bool = True) -> JsonResponse:
    from apikeys.auth import credentials_from
    from apikeys.models import ApiKey
    from billing import ratelimit, usage

    started = time.perf_counter()
    key = ApiKey.objects.authenticate(credentials_from(request))
    ratelimit.check(f"key:{key.pk}", 10_000_000, 10_000_000)
    request.api_key = key  # type: ignore[attr-defined]
    response = JsonResponse({"status": "ok"})
    if record:
        usage.record(request, response, started)
    return response


def round_trips(request: HttpRequest, count: int) -> JsonResponse:
    """The bare view plus `count` of the cheapest database round trips there are."""
    with connection.cursor() as cursor:
        for _ in range(count):
            cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


from nanostudio.urls import urlpatterns as app_urlpatterns  # noqa: E402

urlpatterns = [
    path("floor", floor),
    # What SPEC and the API-key issue require of every call (the key's query, the rate-limit
    # step) without the usage insert.
    path("floor/unrecorded", floor, {"record": False}),
    path("floor/round-trips/<int:count>", round_trips),
    *app_urlpatterns,
]
