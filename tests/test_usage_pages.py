"""The usage page, its CSV export and the dashboard chart: exact numbers, owner only."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection

from billing.periods import utc_today
from conftest import usage_events
from tests.test_usage import traffic_on_two_keys


def test_the_usage_page_shows_counts_charts_keys_and_log(api, alice, alice_client, mint):
    server, laptop = traffic_on_two_keys(api, alice, mint)
    response = alice_client.get("/usage/")
    assert response.status_code == 200
    report = response.context["total"]
    assert (report.requests, report.errors, report.credits) == (5, 1, 0)
    rows = {
        row["key"].name: (row["counts"].requests, row["counts"].errors)
        for row in response.context["key_rows"]
    }
    assert rows == {"server": (3, 0), "laptop": (2, 1)}
    assert [e.endpoint for e in response.context["recent"]] == [
        "GET /api/templates",
        "GET /api/jobs/{job_id}",
        "GET /api/user/profile",
        "GET /api/user/profile",
        "GET /api/user/profile",
    ]
    html = response.content.decode()
    assert html.count('class="chart-col"') == 60  # two charts of 30 days
    assert f"{utc_today():%a %b %-d}: 5 requests (4 2xx, 1 4xx, 0 5xx)" in html
    assert "404" in html and "NOT_FOUND" in html and server.hint in html and laptop.hint in html
    # The 4xx bar is striped, not only a colour; the legend is read out too.
    assert '<pattern id="requests-4xx"' in html and 'fill="url(#requests-4xx)"' in html
    assert '<ul class="legend" aria-label="Legend">' in html


def test_filtering_by_key_and_endpoint_changes_the_numbers(api, alice, alice_client, mint):
    _, laptop = traffic_on_two_keys(api, alice, mint)
    by_key = alice_client.get(f"/usage/?days=7&key={laptop.pk}", headers={"HX-Request": "true"})
    assert by_key.status_code == 200
    html = by_key.content.decode()
    assert html.lstrip().startswith('<div id="report"')  # the partial only
    assert '<p class="stat-value">2</p>' in html  # requests
    assert html.count('class="chart-col"') == 14  # two charts of 7 days
    by_endpoint = alice_client.get("/usage/?endpoint=GET /api/user/profile")
    assert by_endpoint.context["total"].requests == 3
    assert {e.endpoint for e in by_endpoint.context["recent"]} == {"GET /api/user/profile"}


def test_bad_filters_get_a_clear_422(alice_client, bob, mint):
    bob_key, _ = mint(bob, name="bob key")
    for query in ("days=12", f"key={bob_key.pk}", "key=abc", "endpoint=GET /admin/"):
        response = alice_client.get(f"/usage/?{query}")
        assert response.status_code == 422
        assert "These filters are not valid" in response.content.decode()
    assert alice_client.get(f"/usage/export.csv?key={bob_key.pk}").status_code == 400


def test_the_csv_export_has_one_row_per_day_key_endpoint_and_status(api, alice, alice_client, mint):
    server, laptop = traffic_on_two_keys(api, alice, mint)
    response = alice_client.get("/usage/export.csv?days=7")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'attachment; filename="nano-studio-usage-' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    today = str(utc_today())
    assert sorted(
        (r["date"], r["key_name"], r["endpoint"], r["status_class"], r["requests"]) for r in rows
    ) == [
        (today, "laptop", "GET /api/jobs/{job_id}", "4xx", "1"),
        (today, "laptop", "GET /api/templates", "2xx", "1"),
        (today, "server", "GET /api/user/profile", "2xx", "3"),
    ]
    assert {r["key_hint"] for r in rows} == {server.hint, laptop.hint}


def test_another_users_usage_is_never_shown(api, alice, bob, alice_client, mint):
    _, bob_secret = mint(bob, name="bob key")
    for _ in range(4):
        api("get", "/api/user/profile", key=bob_secret)
    page = alice_client.get("/usage/")
    assert page.context["total"].requests == 0
    assert page.context["recent"] == []
    assert "bob key" not in page.content.decode()
    rows = list(csv.reader(io.StringIO(alice_client.get("/usage/export.csv").content.decode())))
    assert len(rows) == 1  # the header only
    assert usage_events().filter(user=bob).count() == 4


def test_the_dashboard_shows_a_30_day_chart(api, alice, alice_client, mint):
    _, secret = mint(alice, name="server")
    api("get", "/api/user/profile", key=secret)
    response = alice_client.get("/dashboard/")
    chart = response.context["sparkline"]
    assert (chart["total"], chart["errors"], chart["columns"]) == (1, 0, 30)
    assert "Usage details" in response.content.decode()


def test_the_usage_pages_need_a_login(client):
    assert client.get("/usage/").status_code == 302
    assert client.get("/usage/export.csv").status_code == 302


# Transactional: the stream is trimmed when a move commits, as in production (in a test's
# transaction every reader would find the moved entries still there and look again).
@pytest.mark.django_db(transaction=True)
def test_the_usage_page_costs_the_same_queries_whatever_the_traffic(
    api, alice, client, mint, django_assert_num_queries
):
    client.force_login(alice)
    traffic_on_two_keys(api, alice, mint)
    # The session comes from the cache; then the user (with plan and balance), keys, usage,
    # ledger and recent requests (on PostgreSQL in a transaction of its own, to plan them for
    # their values: here a savepoint, the SET and its release).
    client.get("/usage/")
    with django_assert_num_queries(8 if connection.vendor == "postgresql" else 5):
        assert client.get("/usage/?days=90").status_code == 200
