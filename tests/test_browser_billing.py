from __future__ import annotations

import pytest

from billing import ledger
from conftest import screenshot
from studio.models import Job
from tests.test_browser_keys import _log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_billing_page_and_upgrade_request(page, alice):
    for n in range(3):
        job = Job.objects.create(user=alice, kind="generate", credits=2)
        ledger.reserve(alice, 2, job)
    ledger.grant_topup(alice, 10, "Welcome bonus")
    _log_in(page)
    assert page.locator("#credits-remaining").inner_text() == "54"
    screenshot(page, "dashboard-credits")
    page.get_by_role("link", name="Billing").first.click()
    page.get_by_role("heading", name="Credit ledger").wait_for()
    assert page.get_by_text("Welcome bonus").is_visible()
    page.get_by_role("button", name="Request Pro").click()
    page.get_by_text("We received your request for the Pro plan").wait_for()
    screenshot(page, "billing")
