"""Notices: credits.low, key.expiring (with its header), key.revoked, credits.granted, a
failing endpoint disabled; as webhook deliveries and as emails the user can switch off."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from accounts.mail import read_mailbox
from billing.ledger import change_plan, grant_topup
from billing.models import Plan
from conftest import make_user, sample_b64, worker_env
from nanostudio.schemas import utc_timestamp
from tests.processes import start_webhooks_worker, stop_process
from tests.receiver import Receiver
from webhooks import delivery as sending
from webhooks import notices
from webhooks.models import Delivery, Endpoint, Notice, NotificationSettings

pytestmark = pytest.mark.django_db(transaction=True)
SEPIA = {"image": sample_b64(), "template": "Sepia", "templateType": "filters"}
ALL_EVENTS = ["credits.low", "credits.granted", "key.expiring", "key.revoked"]


def _subscribed(api, key, url="https://hooks.example.org/nano"):
    """An endpoint for the account's notices (this test only counts its deliveries)."""
    response = api("post", "/api/webhooks", key=key, json={"url": url, "events": ALL_EVENTS})
    assert response.status_code == 201, response.content
    return response.json()["data"]["endpoint"]["id"]


@pytest.fixture
def public_dns(monkeypatch):
    """hooks.example.org resolves to a public address here; nothing is ever sent to it: no
    worker runs the webhooks queue in the tests that use it."""
    import ipaddress

    from nanostudio import outbound

    monkeypatch.setattr(
        outbound, "resolve", lambda host, port: [ipaddress.ip_address("93.184.216.34")]
    )


def _tiny_plan_user(email: str, mint):
    plan = Plan.objects.create(
        slug="tiny",
        name="Tiny",
        monthly_credits=10,
        rate_per_minute=600,
        burst=100,
        max_concurrent_jobs=100,
        features={"job_kinds": ["generate", "ocr"], "template_types": [], "webhooks": True},
    )
    user = make_user(email)
    change_plan(user, plan)
    return user, mint(user)[1]


def test_credits_low_fires_once_at_80_and_once_at_100_percent(api, mint, settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    receiver = Receiver()
    user, key = _tiny_plan_user("spender@example.com", mint)
    _subscribed(api, key, url=receiver.url)
    webhooks_worker = start_webhooks_worker(worker_env({"WEBHOOK_ALLOW_LOOPBACK": "1"}), 4)
    try:
        async_ = {"Prefer": "respond-async"}
        jobs = []
        for n in range(10):
            response = api("post", "/api/generate", key=key, json=SEPIA, headers=async_)
            assert response.status_code == 202, (n, response.content)
            jobs.append(response.json()["data"]["id"])
            notices_sent = Delivery.objects.filter(event="credits.low").count()
            assert notices_sent == (0 if n < 7 else 1 if n < 9 else 2), n  # the 8th and the 10th
        assert api("post", "/api/generate", key=key, json=SEPIA).status_code == 402
        # A refund and a new charge reach 100 % again in the same period: no second notice.
        assert api("post", f"/api/jobs/{jobs[0]}/cancel", key=key).status_code == 200
        assert api("post", "/api/generate", key=key, json=SEPIA, headers=async_).status_code == 202
        deadline = time.monotonic() + 20
        while len(_mails_to(user.email)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        receiver.wait_for(2)
    finally:
        stop_process(webhooks_worker)
        receiver.close()
    assert sorted(json.loads(r.body)["data"]["threshold_percent"] for r in receiver.received) == [
        80,
        100,
    ]
    low = Delivery.objects.filter(event="credits.low").order_by("created_at")
    assert [d.payload["threshold_percent"] for d in low] == [80, 100]
    assert low[0].payload["used"] == 8 and low[1].payload["remaining"] == 0
    subjects = sorted(m.subject for m in _mails_to(user.email))
    assert subjects == [
        "[Nano Studio] You have used 100 % of this month's credits",
        "[Nano Studio] You have used 80 % of this month's credits",
    ]


def _mails_to(address):
    return [m for m in read_mailbox() if address in m.to]


def test_key_expiring_at_14_7_and_1_days_and_the_early_warning_header(api, db, mint, public_dns):
    user = make_user("expiring@example.com", plan="pro")
    start = timezone.now().replace(microsecond=0)
    key, secret = mint(user, expires_at=start + timedelta(days=20))
    _subscribed(api, secret)
    with time_machine.travel(start, tick=False):
        assert notices.check_keys_expiring() == 0
        assert "Nano-Key-Expires" not in api("get", "/api/user/profile", key=secret)
    sent = []
    for days_in, expected in ((6.5, 14), (13.5, 7), (19.5, 1)):
        with time_machine.travel(start + timedelta(days=days_in), tick=False):
            assert notices.check_keys_expiring() == 1
            assert notices.check_keys_expiring() == 0  # once each
            response = api("get", "/api/user/profile", key=secret)
            assert response["Nano-Key-Expires"] == utc_timestamp(key.expires_at)
        sent.append(Delivery.objects.filter(event="key.expiring").latest("created_at"))
        assert sent[-1].payload["days"] == expected
    assert Delivery.objects.filter(event="key.expiring").count() == 3
    # The email links to the key, to roll it.
    assert notices.send_notice_email(user.pk, "key_expiring", sent[-1].payload)
    (message,) = mail.outbox
    assert message.subject == "[Nano Studio] Your API key “test key” expires in 1 day"
    assert f"/settings/api-keys/#key-{key.pk}" in message.body
    NotificationSettings.objects.filter(user=user).update(key_expiring=False)
    assert not notices.send_notice_email(user.pk, "key_expiring", sent[-1].payload)
    assert len(mail.outbox) == 1


def test_revoking_a_key_and_granting_credits_are_events(api, mint, public_dns):
    user = make_user("events@example.com", plan="pro")
    _, secret = mint(user)
    _subscribed(api, secret)
    other, _ = mint(user, name="to revoke")
    assert api("delete", f"/api/keys/{other.pk}", key=secret).status_code in (200, 204)
    grant_topup(user, 25, "Thanks for the bug report")
    revoked = Delivery.objects.get(event="key.revoked")
    assert revoked.payload["name"] == "to revoke" and revoked.payload["revoked_at"]
    granted = Delivery.objects.get(event="credits.granted")
    assert granted.payload == {"amount": 25, "reason": "Thanks for the bug report", "balance": 525}


def test_an_endpoint_failing_for_3_days_is_disabled_and_its_owner_told(api, mint, settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    user = make_user("failing@example.com", plan="pro")
    _, secret = mint(user)
    endpoint_id = _subscribed(api, secret, url="http://127.0.0.1:9/closed")
    Endpoint.objects.filter(pk=endpoint_id).update(
        failing_since=timezone.now() - timedelta(days=3, seconds=1)
    )
    api("post", f"/api/webhooks/{endpoint_id}/test", key=secret)
    delivery = Delivery.objects.get()
    assert sending.deliver(str(delivery.pk)) == "failed"  # nothing listens on port 9
    endpoint = Endpoint.objects.get(pk=endpoint_id)
    assert not endpoint.enabled and "3 days" in endpoint.disabled_reason
    assert notices.send_notice_email(
        user.pk,
        "endpoint_disabled",
        {"id": endpoint_id, "url": endpoint.url, "reason": endpoint.disabled_reason},
    )
    assert f"/settings/webhooks/{endpoint_id}/" in mail.outbox[0].body
    # Re-enabling clears the failure.
    api("patch", f"/api/webhooks/{endpoint_id}", key=secret, json={"enabled": True})
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.failing_since) == (True, None)


def test_notification_settings_page(client, db):
    user = make_user("prefs@example.com")
    client.force_login(user)
    page = client.get("/settings/notifications/")
    assert page.status_code == 200 and b"Email me when" in page.content
    response = client.post("/settings/notifications/", {"key_expiring": "on"})
    assert response.status_code == 302
    prefs = NotificationSettings.objects.get(user=user)
    assert (prefs.credits_low, prefs.key_expiring, prefs.endpoint_disabled) == (False, True, False)
    assert Notice.objects.count() == 0
