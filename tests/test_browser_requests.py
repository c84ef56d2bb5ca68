"""The request log, the inspector and key hygiene as a person uses them, at 1280 and 390 px."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests
import time_machine
from django.utils import timezone
from playwright.sync_api import expect

from conftest import sample_b64, screenshot
from studio.models import Job
from studio.tasks import fail
from tests.test_browser_keys import _log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _call(live_server, secret: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(
        method,
        f"{live_server.url}{path}",
        headers={"Authorization": f"Bearer {secret}", **kwargs.pop("headers", {})},
        timeout=10,
        **kwargs,
    )


def test_find_an_error_in_the_log_and_inspect_a_failed_job(page, live_server, alice, mint):
    key, secret = mint(alice, name="Production server")
    for _ in range(3):
        assert _call(live_server, secret, "GET", "/api/user/profile").status_code == 200
    missing = _call(live_server, secret, "GET", "/api/jobs/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    submit = _call(
        live_server,
        secret,
        "POST",
        "/api/generate",
        json={"image": sample_b64(), "template": "Sepia", "templateType": "filters"},
        headers={"Prefer": "respond-async"},
    )
    assert submit.status_code == 202
    fail(Job.objects.get(pk=submit.json()["data"]["id"]), "ENGINE_ERROR", "The engine broke.")

    _log_in(page)
    page.goto("/usage/")
    page.get_by_role("link", name="Open the request log").click()
    page.wait_for_url("**/usage/requests/*")
    log = page.get_by_role("table", name="Requests")
    expect(log.locator("tbody tr")).to_have_count(5)
    page.get_by_text("Filters: time, key, endpoint").click()  # folded until a filter is set
    page.get_by_label("Status").select_option("4xx")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"status=4xx"))
    log = page.get_by_role("table", name="Matching requests")
    expect(log.locator("tbody tr")).to_have_count(1)
    expect(log).to_contain_text("NOT_FOUND")
    screenshot(page, "request-log-errors")
    page.set_viewport_size({"width": 390, "height": 860})
    screenshot(page, "request-log-errors-390")
    page.set_viewport_size({"width": 1280, "height": 860})

    # Search by the submit's request id, then open it.
    page.goto("/usage/requests/")
    page.get_by_label("Request or job id").fill(submit.headers["X-Request-Id"])
    page.get_by_role("button", name="Search").click()
    page.get_by_title(f"Inspect {submit.headers['X-Request-Id']}").click()
    page.get_by_role("heading", name="Ledger entries").wait_for()
    ledger = page.locator(".ledger-row")
    expect(ledger).to_have_count(2)
    expect(ledger.nth(0)).to_contain_text("Reserve")
    expect(ledger.nth(1)).to_contain_text("Refund")
    expect(page.get_by_role("heading", name="The job it created")).to_be_visible()
    expect(page.locator("#job-h + .facts")).to_contain_text("ENGINE_ERROR")
    curl = page.locator("#curl").inner_text()
    assert "$NANO_API_KEY" in curl and secret not in curl
    screenshot(page, "request-inspector-failed-job")
    page.set_viewport_size({"width": 390, "height": 860})
    screenshot(page, "request-inspector-failed-job-390")
    assert key.pk


def test_a_key_row_with_its_budget_and_a_narrow_suggestion(page, live_server, alice, mint):
    with time_machine.travel(timezone.now() - timedelta(days=70)):
        mint(alice, name="Old laptop")
    with time_machine.travel(timezone.now() - timedelta(days=20)):
        broad, secret = mint(alice, name="Deploy bot", budget_credits=25, budget_period="day")
    for _ in range(2):
        submit = _call(
            live_server,
            secret,
            "POST",
            "/api/generate",
            json={"image": sample_b64(), "template": "Sepia", "templateType": "filters"},
            headers={"Prefer": "respond-async"},
        )
        assert submit.status_code == 202
    assert _call(live_server, secret, "GET", "/api/jobs").status_code == 200

    _log_in(page)
    page.goto("/settings/api-keys/")
    row = page.locator(f"#key-{broad.pk}")
    expect(row.locator(".key-budget")).to_contain_text("2 / 25 credits")
    expect(row.locator(".key-requests")).to_have_text("3 requests in 30 days")
    expect(page.locator(".key-unused")).to_have_count(1)
    expect(row.locator(".key-narrow")).to_contain_text(
        "This Full access key only used generate and jobs:read in the last 30 days."
    )
    screenshot(page, "key-row-budget-narrow")
    page.set_viewport_size({"width": 390, "height": 860})
    screenshot(page, "key-row-budget-narrow-390")
    page.set_viewport_size({"width": 1280, "height": 860})
    row.get_by_role("button", name=re.compile("^Narrow Deploy bot")).click()
    expect(page.locator(f"#key-{broad.pk} .key-narrow")).to_have_count(0)
    expect(page.locator(f"#key-{broad.pk}")).to_contain_text("generate")
    broad.refresh_from_db()
    assert broad.scopes == ["generate", "jobs:read"]
