from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from conftest import sample_b64, screenshot
from tests.test_browser_keys import _log_in
from usage import metering
from usage.models import UsageEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_usage_page_shows_both_keys_and_filters_by_one(page, live_server, alice, mint):
    server, server_secret = mint(alice, name="Production server")
    laptop, laptop_secret = mint(alice, name="Laptop")
    # Earlier days' traffic, so the charts have a shape; then real calls over HTTP.
    for days_ago, count in ((6, 9), (5, 14), (4, 6), (3, 17), (2, 11), (1, 8)):
        for n in range(count):
            UsageEvent.objects.create(
                created_at=timezone.now() - timedelta(days=days_ago, minutes=n),
                user=alice,
                key=server if n % 3 else laptop,
                endpoint="GET /api/jobs",
                method="GET",
                status=404 if n == 4 else 200,
                latency_ms=12.5,
                request_id=f"req_seed{days_ago}{n}",
                credits=n % 2,
            )
    metering.roll_up()
    for secret, calls in ((server_secret, 4), (laptop_secret, 2)):
        for _ in range(calls):
            response = requests.get(
                f"{live_server.url}/api/user/profile",
                headers={"Authorization": f"Bearer {secret}"},
                timeout=10,
            )
            assert response.status_code == 200
    response = requests.post(
        f"{live_server.url}/api/generate",
        headers={"Authorization": f"Bearer {server_secret}", "Prefer": "respond-async"},
        json={"image": sample_b64(), "template": "Grayscale", "templateType": "filters"},
        timeout=10,
    )
    assert response.status_code == 202
    requests.get(
        f"{live_server.url}/api/jobs/nope",
        headers={"Authorization": f"Bearer {laptop_secret}"},
        timeout=10,
    )

    _log_in(page)
    page.get_by_role("link", name="Usage").first.click()
    page.get_by_role("heading", name="Requests per day").wait_for()
    keys_table = page.get_by_role("table", name="By key")
    assert keys_table.get_by_role("link", name="Production server").is_visible()
    assert keys_table.get_by_role("link", name="Laptop").is_visible()
    requests_total = page.locator(".stat-value").first
    assert requests_total.inner_text() == "73"  # 65 earlier + 8 today
    assert page.locator("#report .chart-col").count() == 60
    screenshot(page, "usage")

    page.get_by_label("Key", exact=True).select_option(label=f"Laptop ({laptop.hint})")
    page.wait_for_url(f"**/usage/?*key={laptop.pk}*")
    expect(page.locator(".stat-value").first).to_have_text("26")
    log = page.get_by_role("table", name="Recent requests")
    assert log.get_by_text("Production server").count() == 0
    # Hovering a day shows its numbers.
    page.locator("#report .chart-col").nth(29).hover()
    assert "3 requests" in page.locator(".chart-tip").inner_text()
    screenshot(page, "usage-filtered")

    page.get_by_text("Show the numbers as a table").first.click()
    assert page.get_by_role("table", name="Requests per day by status class").is_visible()
    page.reload()  # the URL kept the filter
    assert page.locator(".stat-value").first.inner_text() == "26"

    page.get_by_role("link", name="Dashboard").first.click()
    usage_card = page.locator(
        "section", has=page.get_by_role("heading", name="API requests, last 30 days")
    )
    assert usage_card.locator(".stat-value").inner_text().startswith("73 requests, 7 errors")
    screenshot(page, "dashboard-usage")
