from __future__ import annotations

import re

import pytest
import requests

from apikeys.models import ApiKey
from conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _log_in(page, email: str = "alice@example.com", password: str = "correct horse battery"):
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(re.compile(r"/dashboard/$"))


def test_create_copy_use_and_revoke_a_key(page, live_server, alice):
    _log_in(page)
    page.get_by_role("link", name="API Keys").first.click()
    page.get_by_text("No API keys yet").wait_for()
    screenshot(page, "keys-empty")

    page.get_by_role("link", name="Generate New Key").click()
    dialog = page.locator("dialog#dialog")
    dialog.get_by_label("Name").fill("laptop script")
    screenshot(page, "key-create-dialog")
    dialog.get_by_role("button", name="Generate key").click()
    dialog.get_by_text("You won't see it again").wait_for()
    # Focus is on the dialog's heading, which is in view.
    assert page.evaluate("document.activeElement.textContent") == "Your new API key"
    assert dialog.get_by_role("heading", name="Your new API key").is_visible()
    screenshot(page, "key-shown-once")

    dialog.get_by_role("button", name="Copy", exact=True).click()
    dialog.get_by_role("button", name="Copied").wait_for()
    secret = page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(r"nh_[0-9A-Za-z]{38}", secret)

    response = requests.get(
        f"{live_server.url}/api/user/profile",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.json()["data"]["key"]["name"] == "laptop script"

    dialog.get_by_role("link", name="Done, I've saved it").click()
    assert not dialog.is_visible()
    row = page.locator("tr.key-row", has_text="laptop script")
    row.wait_for()
    assert secret not in page.content()
    assert row.get_by_text("Active").is_visible()
    screenshot(page, "key-table")

    row.get_by_role("link", name="Revoke laptop script").click()
    dialog.get_by_text("Revoke “laptop script”?").wait_for()
    screenshot(page, "key-revoke-confirm")
    dialog.get_by_role("button", name="Revoke key").click()
    row.get_by_text("Revoked").wait_for()
    assert not dialog.is_visible()
    assert page.get_by_text("“laptop script” is revoked").is_visible()
    assert ApiKey.objects.get(name="laptop script").status == "revoked"

    response = requests.get(
        f"{live_server.url}/api/user/profile",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "INVALID_API_KEY"


def test_edit_a_keys_scopes_budget_and_rate(page, live_server, alice, mint):
    mint(alice, name="laptop", scopes=["jobs:read"])
    _log_in(page)
    page.goto("/settings/api-keys/")
    page.get_by_role("link", name="Edit laptop").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("generate").check()
    dialog.get_by_label("Credit budget").fill("25")
    dialog.get_by_label("Per", exact=True).select_option("week")
    dialog.get_by_label("Own rate (requests per minute)").fill("4")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "key-edit-390")
    dialog.get_by_role("button", name="Save").click()
    row = page.locator("tr.key-row", has_text="laptop")
    row.get_by_text("0 / 25 credits").wait_for()
    assert "4 requests/min" in row.inner_text()
    assert "generate" in row.inner_text()
    screenshot(page, "key-edited-390")


def test_a_dialog_opened_as_its_own_page_saves_and_shows_its_errors(page, live_server, alice, mint):
    key, _ = mint(alice, name="laptop", scopes=["jobs:read"])
    _log_in(page)
    page.goto(f"/settings/api-keys/{key.pk}/edit/")  # as from a link opened in a new tab
    page.get_by_label("Credit budget").fill("1000000001")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Ensure this value is less than or equal to 1000000000.").wait_for()
    page.get_by_label("Credit budget").fill("25")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/settings/api-keys/$"))
    page.locator("tr.key-row", has_text="laptop").get_by_text("0 / 25 credits").wait_for()
