"""Usage metering: one event per keyed /api request, rollups that agree, GET /api/usage."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from billing.models import Plan
from billing.periods import utc_today
from conftest import sample_b64, usage_events
from usage import metering, reports, stream
from usage.models import UsageEvent, UsageKeyRollup, UsageRollup

UNKNOWN_JOB = "/api/jobs/00000000-0000-4000-8000-000000000000"


def _mixed_calls(api, secret: str, read_only: str) -> list[tuple[int, str]]:
    """Requests with mixed outcomes; returns (status, error code) as a client saw them."""
    calls = [
        ("get", "/api/user/profile", secret, None),
        ("get", "/api/user/profile", secret, None),
        ("get", "/api/templates", secret, None),
        ("get", UNKNOWN_JOB, secret, None),
        ("post", "/api/ocr", secret, {"image": "not base64!"}),
        ("post", "/api/generate", read_only, {"image": sample_b64(), "template": "Grayscale"}),
        ("get", "/api/jobs", read_only, None),
    ]
    seen = []
    for method, path, key, body in calls:
        response = api(method, path, key=key, json=body)
        code = response.json()["error"]["code"] if response.status_code >= 400 else ""
        seen.append((response.status_code, code))
    return seen


def test_it_records_one_event_per_keyed_request_and_the_rollups_agree(api, alice, mint):
    key, secret = mint(alice, name="server")
    reader, read_only = mint(alice, name="reader", scopes=["jobs:read", "usage:read"])
    seen = _mixed_calls(api, secret, read_only)
    # No key, or a key that is not one: nothing to attribute, so no event.
    api("get", "/api/user/profile")
    api("get", "/api/user/profile", key="nh_" + "x" * 38)

    events = list(usage_events().filter(user=alice).order_by("id"))
    assert [(e.status, e.error_code) for e in events] == seen
    assert [e.endpoint for e in events] == [
        "GET /api/user/profile",
        "GET /api/user/profile",
        "GET /api/templates",
        "GET /api/jobs/{job_id}",
        "POST /api/ocr",
        "POST /api/generate",
        "GET /api/jobs",
    ]
    assert [e.key_id for e in events] == [key.pk] * 5 + [reader.pk] * 2
    assert seen == [
        (200, ""),
        (200, ""),
        (200, ""),
        (404, "NOT_FOUND"),
        (400, "INVALID_IMAGE"),
        (403, "INSUFFICIENT_PERMISSIONS"),
        (200, ""),
    ]
    assert all(e.request_id.startswith("req_") and e.ip == "127.0.0.1" for e in events)
    assert all(e.latency_ms > 0 and e.credits == 0 for e in events)
    assert usage_events().count() == 7

    today = utc_today()
    before = reports.daily(alice.pk, today, today)  # straight from the events: none rolled up
    shapes_before = reports.days_and_groups(alice.pk, today, today)
    assert metering.roll_up() == 7
    assert metering.roll_up() == 0
    after = reports.daily(alice.pk, today, today)
    assert [row[:5] for row in after] == [row[:5] for row in before]
    assert not usage_events().filter(rolled_up=False).exists()

    rollups = UsageRollup.objects.filter(user=alice)
    assert sum(r.requests for r in rollups) == 7
    per_key_class = {
        (r.key_id, r.status_class): r.requests for r in UsageKeyRollup.objects.filter(user=alice)
    }
    assert per_key_class == {(key.pk, 2): 3, (key.pk, 4): 2, (reader.pk, 2): 1, (reader.pk, 4): 1}
    by_class = {(r.key_id, r.endpoint, r.status_class): r.requests for r in rollups}
    assert by_class == {
        (key.pk, "GET /api/user/profile", 2): 2,
        (key.pk, "GET /api/templates", 2): 1,
        (key.pk, "GET /api/jobs/{job_id}", 4): 1,
        (key.pk, "POST /api/ocr", 4): 1,
        (reader.pk, "POST /api/generate", 4): 1,
        (reader.pk, "GET /api/jobs", 2): 1,
    }
    # What a chart shows for today equals the hand count above, read from the events and from
    # the rollups, per day and per key (the usage page) and from each day's rows (the API).
    shapes_after = reports.days_and_groups(alice.pk, today, today)
    for days, per_key in (shapes_before, shapes_after):
        day = days[today]
        assert (day.requests, day.errors, day.by_class) == (7, 3, {2: 4, 4: 3, 5: 0})
        assert set(per_key) == {key.pk, reader.pk}
        assert (per_key[key.pk].requests, per_key[key.pk].errors) == (5, 2)
        assert (per_key[reader.pk].requests, per_key[reader.pk].errors) == (2, 1)
        assert (per_key[key.pk].by_class, per_key[reader.pk].by_class) == (
            {2: 3, 4: 2, 5: 0},
            {2: 1, 4: 1, 5: 0},
        )
    day = reports.per_day(after, today, today)[today]
    assert (day.requests, day.errors, day.by_class) == (7, 3, {2: 4, 4: 3, 5: 0})


def test_a_rolled_up_and_a_pending_event_are_both_counted_once(api, alice_key):
    _, secret = alice_key
    api("get", "/api/user/profile", key=secret)
    metering.roll_up()
    api("get", "/api/user/profile", key=secret)  # not rolled up yet
    today = utc_today()
    (row,) = reports.daily(alice_key[0].user_id, today, today)
    assert row[1:4] == (alice_key[0].pk, 2, 2)


def test_a_charged_job_records_its_credits_and_job_id(api, alice_key):
    _, secret = alice_key
    response = api(
        "post",
        "/api/generate",
        key=secret,
        json={"image": sample_b64(), "template": "Grayscale", "templateType": "filters"},
        headers={"Prefer": "respond-async"},
    )
    assert response.status_code == 202
    event = usage_events().get()
    assert (event.status, event.credits, str(event.job_id)) == (
        202,
        1,
        response.json()["data"]["id"],
    )
    # Reading the job is attributed to it too, and costs nothing.
    api("get", f"/api/jobs/{event.job_id}", key=secret)
    latest = usage_events().latest("id")
    assert (latest.job_id, latest.credits) == (event.job_id, 0)


@pytest.mark.parametrize("rolled_up_first", [False, True])
def test_a_refunded_job_costs_nothing_in_the_usage_numbers(api, alice_key, rolled_up_first):
    key, secret = alice_key
    response = api(
        "post",
        "/api/generate",
        key=secret,
        headers={"Prefer": "respond-async"},
        json={"image": sample_b64(), "template": "Grayscale", "templateType": "filters"},
    )
    job_id = response.json()["data"]["id"]
    if rolled_up_first:
        metering.roll_up()
        assert UsageKeyRollup.objects.get(key=key).credits == 1
    assert api("post", f"/api/jobs/{job_id}/cancel", key=secret).status_code == 200  # refunded
    metering.roll_up()
    submit = usage_events().get(endpoint="POST /api/generate")
    assert (submit.status, submit.credits) == (202, 0)
    assert {r.credits for r in UsageRollup.objects.filter(endpoint="POST /api/generate")} == {0}
    assert sum(UsageKeyRollup.objects.values_list("credits", flat=True)) == 0
    totals = api("get", "/api/usage", key=secret).json()["data"]["totals"]
    assert totals["credits"] == 0


def test_a_refused_key_is_recorded_for_its_owner(api, alice, mint):
    key, secret = mint(alice, name="old")
    key.revoke()
    response = api("get", "/api/user/profile", key=secret)
    assert response.status_code == 401
    event = usage_events().get()
    assert (event.key_id, event.status, event.error_code) == (key.pk, 401, "INVALID_API_KEY")


def test_a_mistyped_path_or_method_is_recorded_too(api, alice_key):
    _, secret = alice_key
    assert api("get", "/api/jobs/not-a-uuid", key=secret).status_code == 404
    assert api("delete", "/api/user/profile", key=secret).status_code == 405
    assert api("get", "/api/nothing-here").status_code == 404  # no key: nothing to attribute
    events = usage_events().order_by("id").values_list("endpoint", "status", "error_code")
    assert list(events) == [
        ("GET /api/jobs/not-a-uuid", 404, "NOT_FOUND"),
        ("DELETE /api/user/profile", 405, "METHOD_NOT_ALLOWED"),
    ]


def test_rate_limited_requests_are_counted_as_4xx(api, alice_key):
    Plan.objects.filter(slug="free").update(rate_per_minute=60, burst=2)
    _, secret = alice_key
    statuses = [api("get", "/api/user/profile", key=secret).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    codes = list(usage_events().order_by("id").values_list("status", "error_code"))
    assert codes == [(200, ""), (200, ""), (429, "RATE_LIMIT_EXCEEDED")]


@pytest.mark.parametrize(
    ("moment", "expected_day"),
    [
        (datetime(2026, 3, 9, 23, 59, 30, tzinfo=UTC), date(2026, 3, 9)),
        (datetime(2026, 3, 10, 0, 1, tzinfo=UTC), date(2026, 3, 10)),
    ],
)
def test_requests_land_on_their_utc_day(api, alice_key, moment, expected_day):
    _, secret = alice_key
    with time_machine.travel(moment, tick=False):
        assert api("get", "/api/user/profile", key=secret).status_code == 200
        pending = reports.daily(alice_key[0].user_id, expected_day, expected_day)
    assert [row[0] for row in pending] == [expected_day]
    metering.roll_up()
    assert list(UsageRollup.objects.values_list("day", flat=True)) == [expected_day]


def test_requests_either_side_of_midnight_are_on_two_days(api, alice_key):
    _, secret = alice_key
    for moment in (
        datetime(2026, 3, 9, 23, 59, tzinfo=UTC),
        datetime(2026, 3, 10, 0, 1, tzinfo=UTC),
    ):
        with time_machine.travel(moment, tick=False):
            api("get", "/api/user/profile", key=secret)
    with time_machine.travel(datetime(2026, 3, 10, 12, tzinfo=UTC)):
        response = api("get", "/api/usage?from=2026-03-09&to=2026-03-10", key=secret)
    days = {d["date"]: d["requests"] for d in response.json()["data"]["days"]}
    assert days == {"2026-03-09": 1, "2026-03-10": 1}


def test_old_events_are_pruned_and_rollups_kept(api, alice_key, settings):
    _, secret = alice_key
    with time_machine.travel(timezone.now() - timedelta(days=91)):
        api("get", "/api/user/profile", key=secret)
    api("get", "/api/user/profile", key=secret)
    metering.roll_up()
    assert metering.prune_events() == 1
    assert usage_events().count() == 1
    assert sum(UsageRollup.objects.values_list("requests", flat=True)) == 2


def test_unrolled_events_are_never_pruned(api, alice_key):
    _, secret = alice_key
    with time_machine.travel(timezone.now() - timedelta(days=91)):
        api("get", "/api/user/profile", key=secret)
    assert metering.prune_events() == 0  # not counted yet: it stays until the rollup has it
    metering.roll_up()
    assert metering.prune_events() == 1


# --- GET /api/usage ----------------------------------------------------------------------


def traffic_on_two_keys(api, user, mint):
    """5 requests on two keys, "server" (3 x 200) and "laptop" (a 404, and a 200 that is
    not rolled up yet, so still counted from the events); returns (server, laptop)."""
    server, server_secret = mint(user, name="server")
    laptop, laptop_secret = mint(user, name="laptop")
    for _ in range(3):
        api("get", "/api/user/profile", key=server_secret)
    api("get", UNKNOWN_JOB, key=laptop_secret)
    metering.roll_up()
    api("get", "/api/templates", key=laptop_secret)
    return server, laptop


def test_api_usage_by_key_and_by_endpoint(api, alice, mint):
    key, _ = traffic_on_two_keys(api, alice, mint)
    secret = mint(alice, name="reader", scopes=["usage:read"])[1]

    response = api("get", "/api/usage?group_by=key", key=secret)
    assert response.status_code == 200
    data = response.json()["data"]
    today = utc_today()
    assert (data["from"], data["to"]) == (str(today - timedelta(days=29)), str(today))
    assert data["granularity"] == "day" and data["group_by"] == "key"
    assert len(data["days"]) == 30
    assert data["days"][-1] == {
        "date": str(today),
        "requests": 5,
        "errors": 1,
        "credits": 0,
        "status": {"2xx": 4, "4xx": 1, "5xx": 0},
    }
    assert data["totals"] == {"requests": 5, "errors": 1, "credits": 0}
    assert [(g["key"]["name"], g["requests"], g["errors"]) for g in data["groups"]] == [
        ("server", 3, 0),
        ("laptop", 2, 1),
    ]
    assert data["groups"][0]["key"] == {"id": key.pk, "name": "server", "hint": key.hint}
    assert [d["date"] for d in data["groups"][0]["days"]] == [str(today)]

    by_endpoint = api("get", "/api/usage?group_by=endpoint", key=secret).json()["data"]
    # The earlier /api/usage call is counted too, once it has answered.
    assert {g["endpoint"]: g["requests"] for g in by_endpoint["groups"]} == {
        "GET /api/user/profile": 3,
        "GET /api/jobs/{job_id}": 1,
        "GET /api/templates": 1,
        "GET /api/usage": 1,
    }
    assert all(g["key"] is None for g in by_endpoint["groups"])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-03-10&to=2026-03-01", "from"),
        ("from=2024-01-01&to=2026-01-01", "from"),
        ("from=yesterday", "from"),
        ("granularity=hour", "granularity"),
        ("group_by=plan", "group_by"),
    ],
)
def test_api_usage_rejects_bad_parameters(api, alice_key, query, field):
    response = api("get", f"/api/usage?{query}", key=alice_key[1])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert list(error["details"]["fields"]) == [field]


def test_api_usage_never_shows_another_users_usage(api, alice_key, bob, mint):
    _, bob_secret = mint(bob, name="bob key")
    for _ in range(4):
        api("get", "/api/user/profile", key=bob_secret)
    metering.roll_up()
    data = api("get", "/api/usage", key=alice_key[1]).json()["data"]
    assert data["totals"] == {"requests": 0, "errors": 0, "credits": 0}
    assert data["groups"] == []


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_requests_that_finish_together_share_one_insert_and_lose_no_event(alice_key, settings):
    """With the stream's Redis unreachable (and in embedded mode), each event is written in
    its request. While one request's INSERT waits (here on a table lock), the requests that
    finish meanwhile wait for it and then go in together: two commits for eight events, and
    every answered request's event is there."""
    from django.db import connection, transaction
    from django.test import Client

    settings.REDIS_USAGE_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    stream.events.cache_clear()
    _, secret = alice_key
    statuses: list[int] = []

    def call() -> None:
        try:
            answer = Client().get(
                "/api/user/profile", headers={"Authorization": f"Bearer {secret}"}
            )
            statuses.append(answer.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(8)]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {UsageEvent._meta.db_table} IN SHARE MODE")
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(metering._writer._waiting) < 7:  # one writes (blocked), seven wait for it
            assert time.monotonic() < deadline, "the requests never queued behind the first"
            time.sleep(0.01)
        assert UsageEvent.objects.count() == 0  # no answer has left yet
    for thread in threads:
        thread.join(10)

    assert statuses == [200] * 8
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), count(DISTINCT xmin::text) FROM {UsageEvent._meta.db_table}"
        )
        assert cursor.fetchone() == (8, 2)  # 8 events in 2 transactions: the first, then 7


@pytest.mark.django_db(transaction=True)
def test_an_event_the_database_refuses_costs_the_others_in_its_insert_nothing(
    api, alice_key, caplog
):
    _, secret = alice_key
    api("get", "/api/user/profile", key=secret)
    event: dict[str, Any] = dict(usage_events().values().get())
    usage_events().delete()
    fields = {field.name: event[field.attname] for field in metering._fields()}
    orphan = {**fields, "user": 999_999_999}  # no such user: the foreign key refuses it

    metering._insert([metering._row(fields), metering._row(orphan), metering._row(fields)])

    assert UsageEvent.objects.count() == 2
    assert "usage event not recorded" in caplog.text
