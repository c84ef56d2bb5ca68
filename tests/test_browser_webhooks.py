from __future__ import annotations

import pytest

from conftest import make_user, screenshot, worker_env
from tests.processes import start_webhooks_worker, stop_process
from tests.receiver import Receiver
from tests.test_browser_keys import _log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_add_an_endpoint_send_a_test_event_and_resend_it(page, live_server, settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    receiver = Receiver()
    worker = start_webhooks_worker(worker_env({"WEBHOOK_ALLOW_LOOPBACK": "1"}), 4)
    try:
        make_user("hooks-browser@example.com", plan="pro")
        _log_in(page, email="hooks-browser@example.com")
        page.goto("/settings/api-keys/")
        page.get_by_role("navigation", name="Settings").get_by_role("link", name="Webhooks").click()
        page.get_by_label("Endpoint URL").fill("http://10.0.0.1/hook")
        page.get_by_role("button", name="Add endpoint").click()
        error = page.locator("#url-error")
        error.wait_for()
        assert "private network" in error.inner_text()
        page.get_by_label("Endpoint URL").fill(receiver.url)
        page.get_by_label("Description").fill("Local receiver")
        page.get_by_role("button", name="Add endpoint").click()
        secret = page.locator("#endpoint-secret")
        secret.wait_for()
        assert secret.inner_text().startswith("whsec_")
        screenshot(page, "webhook-created")
        page.get_by_role("button", name="Send test event").click()
        page.locator(".delivery-row .badge", has_text="Delivered").wait_for(timeout=20_000)
        assert len(receiver.wait_for(1)) == 1
        page.get_by_text("#1 · 200").click()  # the attempt's details: the answer's body
        assert page.locator(".response-body").first.inner_text() == "ok"
        screenshot(page, "webhook-delivered")
        page.get_by_role("button", name="Resend webhook.test").click()
        page.get_by_text("#2 · 200").wait_for(timeout=20_000)
        assert len(receiver.wait_for(2)) == 2
        ids = {r.headers["webhook-id"] for r in receiver.received}
        assert len(ids) == 1  # a resend is the same message
        page.set_viewport_size({"width": 390, "height": 844})
        screenshot(page, "webhook-delivered-390")
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391).map(e => e.tagName + '.' + e.className).slice(0, 8)"
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide
        screenshot(page, "webhook-delivered-390")
        page.goto("/settings/webhooks/")
        page.get_by_role("link", name=receiver.url).wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, "webhooks-390")
    finally:
        stop_process(worker)
        receiver.close()
