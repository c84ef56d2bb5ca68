"""`make bench ARGS=usage`."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from unittest import mock

from bench.harness import PROXY_HEADERS, bench_user, record, server_times
from bench.seed import seed_usage


def run() -> None:
    """Usage page and /api/usage over 10 million events: a typical and the heavy user."""
    from django.test import Client

    from accounts.models import User
    from apikeys.models import ApiKey
    from billing.periods import utc_today
    from usage import metering
    from usage.models import UsageEvent

    seconds = seed_usage()
    if seconds is None:
        print("  reusing the seeded events (BENCH_RESEED=1 seeds again)")
    else:
        record("usage: seeding 10M events + rollups", seconds, "s")
    record("usage: events in the database", UsageEvent.objects.count())
    for label, email in (("typical", "user5000@usage.bench"), ("heavy", "user0@usage.bench")):
        user = User.objects.get(email=email)
        record(f"usage: {label} user's events", UsageEvent.objects.filter(user=user).count())
        client = Client(headers=PROXY_HEADERS, secure=True)
        client.force_login(user)
        # The API with one of the user's own keys (minted now: the secret is needed).
        ApiKey.objects.filter(user=user, name="bench reader").delete()
        _, secret = ApiKey.objects.mint(user, name="bench reader", scopes=["usage:read"])
        api_client = Client(
            headers={**PROXY_HEADERS, "Authorization": f"Bearer {secret}"}, secure=True
        )
        for days in (30, 90):
            last = utc_today()
            first = last - timedelta(days=days - 1)
            server_times(client, f"/usage/?days={days}", 3)  # warm up
            total, database = server_times(client, f"/usage/?days={days}", 30)
            record(f"usage: page, {label} user, {days} days: median server time", total, "ms")
            record(f"usage: page, {label} user, {days} days: database part", database, "ms")
            path = f"/api/usage?from={first}&to={last}&group_by=key"
            server_times(api_client, path, 3)
            total, database = server_times(api_client, path, 30)
            record(f"usage: API, {label} user, {days} days: median server time", total, "ms")
            record(f"usage: API, {label} user, {days} days: database part", database, "ms")
        metering.roll_up()  # fold in the bench's own requests

    # What recording costs a request: the same profile call with and without the insert.
    from django.db import connection

    _, secret = bench_user("recording@bench.example")  # limits high enough for 6000 calls
    client = Client(headers={**PROXY_HEADERS, "Authorization": f"Bearer {secret}"}, secure=True)
    server_times(client, "/api/user/profile", 200)
    recorded: list[float] = []
    unrecorded: list[float] = []
    # Interleaved rounds, so drift on this shared machine hits both sides alike.
    for _ in range(6):
        recorded.append(server_times(client, "/api/user/profile", 500)[0])
        # The baseline: the same request, not recorded.
        with mock.patch.object(metering, "record", lambda *args: None):
            unrecorded.append(server_times(client, "/api/user/profile", 500)[0])
    with_event, without_event = statistics.median(recorded), statistics.median(unrecorded)
    record(
        "usage: profile request without recording (median, 6 x 500 interleaved)",
        without_event,
        "ms",
    )
    record("usage: profile request with recording (median, 6 x 500 interleaved)", with_event, "ms")
    record("usage: cost of recording an event", with_event - without_event, "ms")
    pending = UsageEvent.objects.filter(rolled_up=False).count()
    started = time.perf_counter()
    metering.roll_up()
    record(f"usage: roll-up of {pending} pending events", time.perf_counter() - started, "s")
    connection.close()
