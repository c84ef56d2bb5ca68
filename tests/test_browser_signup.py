from __future__ import annotations

import re

import pytest

from conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_newcomer_signs_up_verifies_from_the_dev_mailbox_and_logs_in(page, settings, tmp_path):
    settings.DEBUG = True
    settings.EMAIL_BACKEND = "accounts.mail.DevMailboxBackend"
    settings.DEV_MAILBOX_DIR = tmp_path

    page.goto("/")
    page.get_by_role("link", name="Start free").click()
    page.get_by_label("Email").fill("erin@example.com")
    page.get_by_label("Password").fill("a-long-and-fine-passphrase")
    screenshot(page, "signup")
    page.get_by_role("button", name="Sign Up").click()
    page.get_by_text("Verify Your Email Address").first.wait_for()

    page.goto("/dev/mailbox/")
    link = page.locator("a[href*='/accounts/confirm-email/']").first
    link.click()
    screenshot(page, "confirm-email")
    page.get_by_role("button", name="Confirm").click()

    # Verified in the browser that signed up: signed in at once, no second password entry.
    page.wait_for_url(re.compile(r"/dashboard/$"))
    assert page.get_by_text("You have confirmed erin@example.com").is_visible()
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert page.get_by_text("50 credits a month").is_visible()
    screenshot(page, "dashboard")
    page.set_viewport_size({"width": 390, "height": 800})
    screenshot(page, "dashboard-phone")
