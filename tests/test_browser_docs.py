from __future__ import annotations

import pytest

from conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_reading_the_docs_and_copying_an_example(page, live_server):
    page.goto("/")
    page.get_by_role("link", name="Docs").first.click()
    page.get_by_role("heading", name="Getting started").wait_for()
    docs_nav = page.get_by_role("navigation", name="Documentation")
    docs_nav.get_by_role("link", name="Authentication").click()
    page.get_by_role("heading", name="Rotating a key").wait_for()
    assert page.get_by_text('$env:NANO_API_KEY = "nh_…"').is_visible()
    screenshot(page, "docs-authentication")

    docs_nav.get_by_role("link", name="Generate").click()
    page.get_by_role("heading", name="Idempotency-Key").wait_for()
    python = page.locator(".example-block", has_text="Python (requests)")
    python.get_by_role("button", name="Copy").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert f'BASE_URL = "{live_server.url}"' in copied
    assert "os.environ['NANO_API_KEY']" in copied
    screenshot(page, "docs-generate")

    # A link to a section lands with its heading below the sticky top bar, not under it.
    page.goto("/docs/api/ocr/#speed")
    heading = page.get_by_role("heading", name="Speed and what it reads").bounding_box()
    topbar = page.locator(".topbar").bounding_box()
    assert heading and topbar and heading["y"] >= topbar["y"] + topbar["height"]
