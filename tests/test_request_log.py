"""The request log (page, CSV, `GET /api/requests`) and the request inspector: every filter,
keyset paging, bounded-memory export, other users' requests invisible."""

from __future__ import annotations

import csv
import io
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEntry
from billing.models import LedgerEntry
from conftest import sample_b64, usage_events
from studio.models import Job
from studio.tasks import fail
from tests.test_audit import _no_secret_in_the_table
from usage import requestlog
from usage.models import UsageEvent

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _event(user, key, n: int, **fields) -> UsageEvent:
    values = {
        "created_at": T0 - timedelta(minutes=n),
        "user": user,
        "key": key,
        "endpoint": "GET /api/user/profile",
        "method": "GET",
        "status": 200,
        "latency_ms": 3.0,
        "ip": "10.0.0.1",
        "request_id": f"req_{n:06d}",
        "rolled_up": True,
    }
    values.update(fields)
    return UsageEvent.objects.create(**values)


@pytest.fixture
def logged(alice, bob, mint):
    """Alice's two keys' varied requests, and one of Bob's."""
    server, _ = mint(alice, name="server")
    laptop, _ = mint(alice, name="laptop")
    job_id = uuid.uuid4()
    events = {
        "ok": _event(alice, server, 1),
        "elsewhere": _event(alice, laptop, 2, ip="203.0.113.9"),
        "404": _event(alice, server, 3, status=404, error_code="NOT_FOUND"),
        "429": _event(alice, laptop, 4, status=429, error_code="RATE_LIMIT_EXCEEDED"),
        "500": _event(alice, server, 5, status=500, error_code="INTERNAL_ERROR"),
        "job": _event(
            alice, server, 6, endpoint="POST /api/generate", method="POST", job_id=job_id
        ),
        "old": _event(alice, server, 60 * 24 * 3),  # three days before T0
    }
    bob_key, _ = mint(bob, name="bob")
    events["bob"] = _event(bob, bob_key, 7, request_id="req_bobsown")
    return {"server": server, "laptop": laptop, "job_id": job_id, **events}


def _ids(alice, **filters) -> set[str]:
    rows, _ = requestlog.page(alice.pk, requestlog.LogFilter(**filters), limit=100)
    return {row.request_id for row in rows}


def test_every_filter_narrows_the_log(alice, logged):
    assert _ids(alice) == {
        logged[n].request_id for n in ("ok", "elsewhere", "404", "429", "500", "job", "old")
    }
    assert _ids(alice, since=T0 - timedelta(hours=1)) == {
        logged[n].request_id for n in ("ok", "elsewhere", "404", "429", "500", "job")
    }
    assert _ids(alice, until=T0 - timedelta(days=1)) == {logged["old"].request_id}
    assert _ids(alice, key_id=logged["laptop"].pk) == {"req_000002", "req_000004"}
    assert _ids(alice, endpoint="POST /api/generate") == {"req_000006"}
    assert _ids(alice, status="4xx") == {"req_000003", "req_000004"}
    assert _ids(alice, status="5xx") == {"req_000005"}
    assert _ids(alice, status="429") == {"req_000004"}
    assert _ids(alice, error_code="NOT_FOUND") == {"req_000003"}
    assert _ids(alice, ip="203.0.113.9") == {"req_000002"}
    assert _ids(alice, search="req_000005") == {"req_000005"}
    assert _ids(alice, search=str(logged["job_id"])) == {"req_000006"}
    assert _ids(alice, status="4xx", key_id=logged["laptop"].pk) == {"req_000004"}
    # Bob's request is not Alice's, however she searches.
    assert _ids(alice, search="req_bobsown") == set()


def test_the_page_and_the_api_filter_the_same_way(api, alice, alice_client, logged, mint):
    _, reader = mint(alice, name="reader", scopes=["usage:read"])
    cases = {
        "status=4xx": {"req_000003", "req_000004"},
        "error_code=INTERNAL_ERROR": {"req_000005"},
        "ip=203.0.113.9": {"req_000002"},
        "q=req_000006": {"req_000006"},
        f"q={logged['job_id']}": {"req_000006"},
        "endpoint=POST /api/generate": {"req_000006"},
        "since=2026-11-20T11:57&until=2026-11-20T11:58:30": {"req_000002", "req_000003"},
    }
    for query, expected in cases.items():
        page = alice_client.get(f"/usage/requests/?{query}")
        assert page.status_code == 200, (query, page.content)
        html = page.content.decode()
        shown = {
            rid
            for rid in (
                "req_000001",
                "req_000002",
                "req_000003",
                "req_000004",
                "req_000005",
                "req_000006",
            )
            if f"/usage/requests/{rid}/" in html
        }
        assert shown == expected, query
        api_query = query.replace("since=", "from=").replace("until=", "to=")
        answer = api("get", f"/api/requests?{api_query}", key=reader)
        assert answer.status_code == 200, (query, answer.content)
        assert {r["request_id"] for r in answer.json()["data"]["requests"]} == expected, query
    by_key = api("get", f"/api/requests?key_id={logged['laptop'].pk}", key=reader).json()
    assert {r["request_id"] for r in by_key["data"]["requests"]} == {"req_000002", "req_000004"}
    # The reader's own call is logged too, from now on.
    assert (
        api("get", "/api/requests?limit=1", key=reader).json()["data"]["requests"][0]["endpoint"]
        == "GET /api/requests"
    )


def test_bad_filters_get_a_clear_error_and_change_nothing(api, alice, alice_client, logged, mint):
    _, reader = mint(alice, name="reader", scopes=["usage:read"])
    _, no_usage = mint(alice, name="no usage", scopes=["generate"])
    for query in (
        "status=7xx",
        "status=20",
        "ip=not-an-ip",
        "cursor=bm9wZQ==",
        "cursor=",
        "error_code=lower case",
        "q=a b",
        "limit=1000",
        "key_id=108035542888743642144440320",  # past 64 bits (schemathesis found it)
        "from=yesterday",
    ):
        answer = api("get", f"/api/requests?{query}", key=reader)
        assert answer.status_code == 400, (query, answer.content)
        assert answer.json()["error"]["code"] == "VALIDATION_ERROR"
    denied = api("get", "/api/requests", key=no_usage)
    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "INSUFFICIENT_PERMISSIONS")
    for query in ("status=600", "ip=nope", "q=a b", "key=99999", "endpoint=GET /admin/"):
        assert alice_client.get(f"/usage/requests/?{query}").status_code == 422, query
    assert alice_client.get("/usage/requests/?cursor=garbage").status_code == 400
    assert alice_client.get("/usage/requests/export.csv?ip=nope").status_code == 400


def test_cursor_paging_sees_each_row_once_while_rows_arrive(alice, mint):
    key, _ = mint(alice)
    for n in range(120):
        # Pairs share a timestamp, so pages must break ties by id.
        _event(alice, key, n // 2, request_id=f"req_first{n:04d}")
    log = requestlog.LogFilter()
    first, cursor = requestlog.page(alice.pk, log, limit=50)
    # Newer requests arrive, one at the very instant of the cursor's row.
    for n in range(10):
        _event(alice, key, -1 - n, request_id=f"req_newer{n:04d}")
    _event(alice, key, 0, created_at=first[-1].created_at, request_id="req_sametime")
    second, cursor = requestlog.page(alice.pk, log, cursor, limit=50)
    third, cursor = requestlog.page(alice.pk, log, cursor, limit=50)
    assert cursor is None
    seen = [row.request_id for row in first + second + third]
    assert len(seen) == len(set(seen)) == 120
    assert set(seen) == {f"req_first{n:04d}" for n in range(120)}
    assert [row.created_at for row in first + second + third] == sorted(
        (row.created_at for row in first + second + third), reverse=True
    )


def test_the_api_pages_with_next_cursor(api, alice, mint):
    key, reader = mint(alice, name="reader", scopes=["usage:read"])
    for n in range(7):
        _event(alice, key, n, request_id=f"req_paged{n:04d}")
    seen, cursor = [], None
    for _ in range(5):
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        data = api("get", f"/api/requests?{query}&q=", key=reader).json()["data"]
        seen += [row["request_id"] for row in data["requests"]]
        cursor = data["next_cursor"]
        if cursor is None:
            break
    # Each page's own call is logged as it goes, newer than the cursor: never seen in later pages.
    assert [rid for rid in seen if rid.startswith("req_paged")] == [
        f"req_paged{n:04d}" for n in range(7)
    ]


_SERIES = {
    # n = 0 .. count-1, written by the database itself (a Python loop took 20 s)
    "postgresql": "SELECT n FROM generate_series(0, %s - 1) AS n",
    "sqlite": "WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n + 1 < %s) "
    "SELECT n FROM s",
}
_TIME = {
    "postgresql": "%s::timestamptz - n * interval '1 second'",
    "sqlite": "datetime(%s, '-' || n || ' seconds')",
}
_REQUEST_ID = {
    "postgresql": "'req_' || lpad(n::text, 8, '0')",
    "sqlite": "'req_' || substr('00000000' || n, -8, 8)",
}


def _insert_events(user_id: int, key_id: int, count: int) -> None:
    """`count` GET /api/jobs events a second apart before T0, one in ten a 404."""
    vendor = connection.vendor
    start = T0.isoformat() if vendor == "postgresql" else T0.strftime("%Y-%m-%d %H:%M:%S")
    sql = (
        "INSERT INTO billing_usageevent (created_at, user_id, key_id, endpoint, method, status, "
        "error_code, credits, latency_ms, ip, request_id, rolled_up) "
        f"SELECT {_TIME[vendor]}, %s, %s, 'GET /api/jobs', 'GET', "
        "CASE WHEN n %% 10 = 0 THEN 404 ELSE 200 END, "
        "CASE WHEN n %% 10 = 0 THEN 'NOT_FOUND' ELSE '' END, 0, 2.5, '10.0.0.2', "
        f"{_REQUEST_ID[vendor]}, TRUE FROM ({_SERIES[vendor]}) AS series"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [start, user_id, key_id, count])


def test_csv_export_streams_in_chunks_in_bounded_memory(alice, alice_client, mint):
    key, _ = mint(alice)
    _insert_events(alice.pk, key.pk, 20_000)
    response = alice_client.get("/usage/requests/export.csv")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    tracemalloc.start()
    try:
        lines = chunks = 0
        first_rows: list[str] = []
        for chunk in response.streaming_content:
            chunks += 1
            lines += chunk.count(b"\n")
            if not first_rows:
                first_rows = chunk.decode().splitlines()[:2]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == 20_001  # the header and one row per request
    assert chunks == 10  # a write per 2,000 rows, not one per row
    assert first_rows[0].startswith("time_utc,request_id,method,endpoint")
    assert first_rows[1].split(",")[1] == "req_00000000"  # newest first
    # One chunk of 2,000 rows at a time (~4 MB at the peak, whatever the count): the 20,000
    # rows as model instances would take ~20 MB.
    assert peak < 8 * 1024 * 1024, peak
    # Filters apply to the export too.
    errors = alice_client.get("/usage/requests/export.csv?status=404")
    rows = list(csv.reader(io.StringIO(b"".join(errors.streaming_content).decode())))
    assert len(rows) == 2_001 and {row[5] for row in rows[1:]} == {"404"}


def test_a_key_pasted_into_a_path_is_not_logged(api, alice, alice_key):
    _, secret = alice_key
    assert api("get", f"/api/jobs/x/{secret}", key=secret).status_code == 404
    event = usage_events().get(user=alice)
    assert secret not in event.path and event.path == "/api/jobs/x/nh_[redacted]"


def test_other_users_requests_are_invisible(api, alice_client, bob, logged, mint):
    _, bob_reader = mint(bob, name="bob reader", scopes=["usage:read"])
    assert alice_client.get("/usage/requests/req_bobsown/").status_code == 404
    assert alice_client.get("/usage/requests/req_nosuchid/").status_code == 404
    html = alice_client.get("/usage/requests/").content.decode()
    assert "req_bobsown" not in html
    # Bob's key cannot read Alice's request either.
    answer = api("get", f"/api/requests/{logged['ok'].request_id}", key=bob_reader)
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "NOT_FOUND")
    assert api("get", "/api/requests/req_bobsown", key=bob_reader).status_code == 200


def test_the_inspector_tells_a_refunded_failed_jobs_story(api, alice, alice_client, alice_key):
    response = api(
        "post",
        "/api/generate",
        key=alice_key[1],
        json={"image": sample_b64(), "template": "Sepia", "templateType": "filters"},
        headers={"Prefer": "respond-async"},
    )
    assert response.status_code == 202
    request_id = response["X-Request-Id"]
    job = Job.objects.get(pk=response.json()["data"]["id"])
    fail(job, "ENGINE_ERROR", "the engine broke")
    read = api("get", f"/api/jobs/{job.pk}", key=alice_key[1])

    page = alice_client.get(f"/usage/requests/{request_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-kind="debit"' in html and 'data-kind="refund"' in html
    assert page.context["ledger"] == list(
        LedgerEntry.objects.filter(job=job).order_by("created_at", "pk")
    )
    assert [(e.kind, e.amount) for e in page.context["ledger"]] == [("debit", -1), ("refund", 1)]
    assert "ENGINE_ERROR" in html and "Failed" in html and "The job it created" in html
    assert "Copy as curl" in html and "$NANO_API_KEY" in html and alice_key[1] not in html
    assert "auth" in [name for name, _ in page.context["timings"]]
    assert "-X POST" in page.context["curl"] and "/api/generate" in page.context["curl"]
    # Reading the job later is not what moved the credits.
    later = alice_client.get(f"/usage/requests/{read['X-Request-Id']}/")
    assert later.context["ledger"] == [] and "The job it concerned" in later.content.decode()
    # The API tells the same story.
    _, reader = alice_key
    detail = api("get", f"/api/requests/{request_id}", key=reader).json()["data"]
    assert [(e["kind"], e["amount"]) for e in detail["ledger"]] == [("debit", -1), ("refund", 1)]
    assert detail["job_id"] == str(job.pk) and detail["rate_limit"]["limit"] > 0
    assert detail["inspect_url"].endswith(f"/usage/requests/{request_id}/")


def test_the_inspector_marks_a_call_made_with_a_rolled_keys_old_secret(
    api, alice, alice_client, alice_key
):
    key, old = alice_key
    new = key.roll("1h")
    with_old = api("get", "/api/user/profile", key=old)
    with_new = api("get", "/api/user/profile", key=new)
    assert with_old.status_code == with_new.status_code == 200
    old_page = alice_client.get(f"/usage/requests/{with_old['X-Request-Id']}/").content.decode()
    new_page = alice_client.get(f"/usage/requests/{with_new['X-Request-Id']}/").content.decode()
    assert "Old secret" in old_page and "previous secret" in old_page
    assert "Old secret" not in new_page and "With the current secret" in new_page
    events = usage_events().filter(key=key).order_by("id")
    assert [e.previous_secret for e in events] == [True, False]
    detail = api("get", f"/api/requests/{with_old['X-Request-Id']}", key=new).json()["data"]
    assert detail["previous_secret"] is True


def test_key_hygiene_on_the_keys_page(api, alice, alice_client, mint, time_machine):
    time_machine.move_to(timezone.now() - timedelta(days=70), tick=True)
    idle, _ = mint(alice, name="idle")
    broad, broad_secret = mint(alice, name="broad")
    time_machine.move_to(timezone.now() + timedelta(days=70), tick=True)
    api(
        "post",
        "/api/generate",
        key=broad_secret,
        json={"image": sample_b64(), "template": "Sepia", "templateType": "filters"},
        headers={"Prefer": "respond-async"},
    )
    api("get", "/api/jobs", key=broad_secret)
    api("get", "/api/user/profile", key=broad_secret)

    page = alice_client.get("/settings/api-keys/")
    html = page.content.decode()
    assert "3 requests in 30 days" in html and "0 requests in 30 days" in html
    assert html.count("Unused for 60 days") == 1  # idle, not broad
    assert "This Full access key only used generate and jobs:read in the last 30 days." in html
    # One click narrows it, and the security log says so.
    narrowed = alice_client.post(
        f"/settings/api-keys/{broad.pk}/narrow/", {"scopes": ["generate", "jobs:read"]}
    )
    assert narrowed.status_code == 302
    broad.refresh_from_db()
    assert broad.scopes == ["generate", "jobs:read"]
    assert AuditEntry.objects.filter(action="key.scopes_changed", target=broad.label).exists()
    # Never a widening through this door.
    alice_client.post(f"/settings/api-keys/{broad.pk}/narrow/", {"scopes": ["keys:write"]})
    broad.refresh_from_db()
    assert broad.scopes == ["generate", "jobs:read"]
    assert idle.pk != broad.pk


def test_a_rolls_grace_shows_old_and_new_traffic_and_can_end_now(
    api, alice, alice_client, alice_key, time_machine
):
    time_machine.move_to(timezone.now(), tick=True)
    key, old = alice_key
    new = key.roll("24h")
    for secret in (old, old, new):
        assert api("get", "/api/user/profile", key=secret).status_code == 200
    html = alice_client.get("/settings/api-keys/").content.decode()
    assert "<strong>2</strong> calls with the old secret, 1 with the new" in html
    assert "Safe to end the grace period" not in html
    time_machine.move_to(timezone.now() + timedelta(hours=1, minutes=1), tick=True)
    assert api("get", "/api/user/profile", key=new).status_code == 200
    html = alice_client.get("/settings/api-keys/").content.decode()
    assert "Safe to end the grace period: the old secret has not been used for 1 h." in html
    assert "2</strong> calls with the old secret, 2 with the new" in html
    ended = alice_client.post(f"/settings/api-keys/{key.pk}/end-grace/")
    assert ended.status_code == 302
    refused = api("get", "/api/user/profile", key=old)
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "INVALID_API_KEY")
    assert api("get", "/api/user/profile", key=new).status_code == 200
    assert AuditEntry.objects.filter(action="key.grace_ended", target=key.label).count() == 1
    # A second click changes nothing and records nothing.
    alice_client.post(f"/settings/api-keys/{key.pk}/end-grace/")
    assert AuditEntry.objects.filter(action="key.grace_ended").count() == 1
    _no_secret_in_the_table([old, new])
