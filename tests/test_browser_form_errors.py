"""Every htmx form shows its errors in place, with DEBUG on (make run) and off (production):
a form with errors answers 422, which htmx swaps like a success (base.html's htmx-config)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from apikeys.models import ApiKey
from conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    settings.DEBUG = request.param  # django-htmx loads its error-page handler only with DEBUG on
    return request.param


def _log_in(page):
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(re.compile(r"/dashboard/$"))


def _still_the_page(page) -> None:
    """The error went into the dialog; the page around it (styled, with its navigation) stayed."""
    assert page.locator("dialog#dialog").is_visible()
    assert page.get_by_role("navigation", name="Main", exact=True).is_visible()
    assert page.locator("h1", has_text="API Keys").is_visible()


def test_key_dialogs_show_their_errors_in_place(page, live_server, alice, mint, debug):
    mint(alice, name="laptop")
    _log_in(page)
    page.goto("/settings/api-keys/")
    dialog = page.locator("dialog#dialog")

    page.get_by_role("link", name="Generate New Key").click()
    dialog.get_by_role("heading", name="Generate a new API key").wait_for()
    assert page.evaluate("document.activeElement.id") == "id_name"  # focus moved in
    dialog.get_by_label("Name").fill("laptop")
    dialog.get_by_role("button", name="Generate key").click()
    dialog.get_by_text("already").wait_for()
    _still_the_page(page)
    assert page.evaluate("document.activeElement.name") == "name"  # the field in error
    screenshot(page, f"key-create-error-{'debug' if debug else 'prod'}")

    dialog.get_by_label("Name").fill("ci")
    dialog.get_by_label("Custom", exact=True).check()
    dialog.get_by_role("button", name="Generate key").click()
    dialog.get_by_text("Pick at least one scope.").wait_for()
    _still_the_page(page)

    dialog.get_by_label("Full access", exact=True).check()
    dialog.get_by_label("On a date", exact=True).check()
    dialog.locator("input[type=date]").fill(str(date.today() - timedelta(days=1)))
    dialog.get_by_role("button", name="Generate key").click()
    dialog.get_by_text("The date must be in the future.").wait_for()
    _still_the_page(page)
    assert ApiKey.objects.filter(user=alice).count() == 1  # nothing was made

    dialog.get_by_role("link", name="Cancel").click()
    page.locator("tr.key-row", has_text="laptop").get_by_role("link", name="Rename laptop").click()
    mint(alice, name="server")
    dialog.get_by_label("New name").fill("server")
    dialog.get_by_role("button", name="Save").click()
    dialog.get_by_text("already").wait_for()
    _still_the_page(page)


def test_the_key_limit_is_shown_in_the_dialog(page, live_server, alice, mint, debug):
    for n in range(5):  # the Free plan's limit
        mint(alice, name=f"key {n}")
    _log_in(page)
    page.goto("/settings/api-keys/")
    page.get_by_role("link", name="Generate New Key").click()
    dialog = page.locator("dialog#dialog")
    dialog.get_by_label("Name").fill("sixth")
    dialog.get_by_role("button", name="Generate key").click()
    dialog.get_by_text("Your plan allows 5 live API keys").wait_for()
    _still_the_page(page)
    assert ApiKey.objects.filter(user=alice).count() == 5
