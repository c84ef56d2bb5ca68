"""Webhooks: endpoints, signed deliveries through real workers to a real local receiver,
retries, isolation between endpoints and users, and addresses a webhook may never reach."""

from __future__ import annotations

import ipaddress
import json
import time
from contextlib import contextmanager

import pytest
from standardwebhooks.webhooks import Webhook

from conftest import make_user, sample_b64, worker_env
from nanostudio import outbound
from tests.processes import start_webhooks_worker, start_worker, stop_process
from tests.receiver import Receiver
from webhooks import delivery as sending
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {
    "WEBHOOK_ALLOW_LOOPBACK": "1",
    "WEBHOOK_RETRY_SCHEDULE_S": "1,1,1,1,1,1,1",
    "WEBHOOK_TIMEOUT_S": "3",
}
SEPIA = {"image": sample_b64(), "template": "Sepia", "templateType": "filters"}


@pytest.fixture
def loopback(settings):
    """This process may register receivers on 127.0.0.1 (development setting)."""
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    settings.WEBHOOK_RETRY_SCHEDULE_S = [1] * 7
    settings.WEBHOOK_TIMEOUT_S = 3


@contextmanager
def workers(jobs: bool = True):
    """The webhooks queue's worker (threads, as in the Procfile) and, with `jobs`, a job worker."""
    env = worker_env(FAST)
    started = [start_webhooks_worker(env)]
    if jobs:
        started.append(start_worker(env))
    try:
        yield
    finally:
        for process in started:
            stop_process(process)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def _pro(email: str, mint):
    user = make_user(email, plan="pro")
    return user, mint(user)[1]


def _add(api, secret, url, events=("job.succeeded", "job.failed")):
    response = api("post", "/api/webhooks", key=secret, json={"url": url, "events": list(events)})
    assert response.status_code == 201, response.content
    return response.json()["data"]


def _verified(received, secret):
    """The event, after checking its signature with the standardwebhooks package."""
    headers = {name.lower(): value for name, value in received.headers.items()}
    return Webhook(secret).verify(received.body, headers)


def test_a_job_that_succeeds_reaches_the_receiver_signed(api, client, mint, loopback, receiver):
    user, key = _pro("hooks@example.com", mint)
    created = _add(api, key, receiver.url)
    assert created["secret"].startswith("whsec_")
    stored = Endpoint.objects.get(pk=created["endpoint"]["id"])
    assert created["secret"] not in stored.secret_encrypted  # encrypted at rest
    job_secret = api("get", "/api/webhooks/job-secret", key=key).json()["data"]["secret"]
    with workers():
        response = api("post", "/api/generate", key=key, json=SEPIA)
        assert response.json()["data"]["status"] == "succeeded"
        job_id = response.json()["data"]["id"]
        own = f"http://127.0.0.1:{receiver.port}/job-hook"
        response = api("post", "/api/generate", key=key, json={**SEPIA, "webhook": own})
        second = response.json()["data"]["id"]
        received = receiver.wait_for(3)
        # The worker records a delivery after the receiver has answered it: wait for that too,
        # before the workers stop.
        deadline = time.monotonic() + 20
        delivered = Delivery.objects.filter(status="delivered")
        while delivered.count() < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    by_path = {(r.path, json.loads(r.body)["data"]["id"]): r for r in received}
    event = _verified(by_path[("/hook", job_id)], created["secret"])
    assert event["type"] == "job.succeeded"
    assert event["data"]["id"] == job_id and event["data"]["status"] == "succeeded"
    assert event["data"]["output_url"].endswith(f"/api/jobs/{job_id}/output")
    assert _verified(by_path[("/job-hook", second)], job_secret)["data"]["id"] == second
    assert Delivery.objects.filter(status="delivered").count() == 3
    # The job's page lists its deliveries.
    client.force_login(user)
    page = client.get(f"/jobs/{second}/").content.decode()
    assert "Webhook deliveries" in page and "/job-hook" in page and "Delivered" in page


def test_deliveries_are_kept_30_days(db, mint, loopback, api):
    from datetime import timedelta

    from django.utils import timezone

    _, key = _pro("old@example.com", mint)
    endpoint_id = _add(api, key, "http://127.0.0.1:9/hook")["endpoint"]["id"]
    for _ in range(2):
        api("post", f"/api/webhooks/{endpoint_id}/test", key=key)
    old = Delivery.objects.first()
    Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    assert sending.purge_old() == 1
    assert Delivery.objects.count() == 1 and not Delivery.objects.filter(pk=old.pk).exists()


def test_failures_are_retried_with_one_webhook_id_until_delivered(api, mint, loopback):
    receiver = Receiver(500, 500, 500, 200)
    try:
        _, key = _pro("retry@example.com", mint)
        created = _add(api, key, receiver.url)
        endpoint_id = created["endpoint"]["id"]
        with workers(jobs=False):
            response = api("post", f"/api/webhooks/{endpoint_id}/test", key=key)
            assert response.status_code == 202
            deadline = time.monotonic() + 40
            while len(receiver.received) < 4 and time.monotonic() < deadline:
                sending.dispatch_due()  # what beat does every 2 s
                time.sleep(0.3)
            time.sleep(0.5)
    finally:
        receiver.close()
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(receiver.received) == 4 and len(ids) == 1
    for received in receiver.received:
        assert _verified(received, created["secret"])["type"] == "webhook.test"
    log = api("get", f"/api/webhooks/{endpoint_id}/deliveries", key=key).json()["data"]
    (delivery,) = log["deliveries"]
    assert delivery["status"] == "delivered" and delivery["webhook_id"] == ids.pop()
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 500, 200]
    assert all(a["latency_ms"] >= 0 for a in delivery["attempts"])
    assert delivery["attempts"][0]["response_body"] == "ok"


def test_a_dead_endpoint_does_not_delay_another_users_delivery(api, mint, loopback):
    dead, alive = Receiver(*["hang"] * 6, hang_s=8), Receiver()
    try:
        _, key_a = _pro("dead@example.com", mint)
        _, key_b = _pro("alive@example.com", mint)
        slow = _add(api, key_a, dead.url)["endpoint"]["id"]
        fast = _add(api, key_b, alive.url)["endpoint"]["id"]
        with workers(jobs=False):
            for _ in range(6):
                api("post", f"/api/webhooks/{slow}/test", key=key_a)
            dead.wait_for(1, 20)
            sent = time.monotonic()
            api("post", f"/api/webhooks/{fast}/test", key=key_b)
            alive.wait_for(1, 20)
    finally:
        dead.close()
        alive.close()
    assert alive.received, "the second user's delivery never arrived"
    assert alive.received[0].at - sent < 1.0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9/hook",
        "https://10.1.2.3/hook",
        "https://internal.example.test/hook",  # resolves to 10.x (below)
        "http://user:pw@hooks.example.org/",
        "ftp://hooks.example.org/",
    ],
)
def test_registration_refuses_addresses_inside_the_network(api, mint, monkeypatch, url):
    monkeypatch.setattr(outbound, "resolve", lambda host, port: [ipaddress.ip_address("10.0.0.7")])
    _, key = _pro(f"ssrf{abs(hash(url)) % 1000}@example.com", mint)
    response = api("post", "/api/webhooks", key=key, json={"url": url, "events": ["job.failed"]})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"]["fields"]["url"]
    response = api("post", "/api/generate", key=key, json={**SEPIA, "webhook": url})
    assert response.status_code == 400
    assert "webhook" in response.json()["error"]["details"]["fields"]
    assert Endpoint.objects.count() == 0


def test_sending_checks_again_and_connects_only_to_the_checked_address(
    api, mint, monkeypatch, settings, receiver
):
    """A name that resolved to an allowed address at registration and to 10.x at send time is
    refused before any connection; a name is connected to at the address that was checked."""
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    answers = {"hooks.example.test": [ipaddress.ip_address("127.0.0.1")]}
    monkeypatch.setattr(outbound, "resolve", lambda host, port: answers[host])
    _, key = _pro("rebind@example.com", mint)
    url = f"http://hooks.example.test:{receiver.port}/hook"
    endpoint_id = _add(api, key, url, events=["key.revoked"])["endpoint"]["id"]
    api("post", f"/api/webhooks/{endpoint_id}/test", key=key)
    delivery = Delivery.objects.get()
    assert sending.deliver(str(delivery.pk)) == "delivered"  # in this process
    (received,) = receiver.received
    assert received.headers["Host"] == f"hooks.example.test:{receiver.port}"

    answers["hooks.example.test"] = [ipaddress.ip_address("10.0.0.7")]  # rebound
    api("post", f"/api/webhooks/{endpoint_id}/test", key=key)
    second = Delivery.objects.exclude(pk=delivery.pk).get()
    assert sending.deliver(str(second.pk)) == "failed"
    assert len(receiver.received) == 1  # nothing was sent
    assert "private network" in second.tries.get().error

    # With the loopback setting off, each address a URL may not reach is refused at send
    # time too (say the setting was on when the endpoint was registered), before connecting.
    settings.WEBHOOK_ALLOW_LOOPBACK = False
    for url, reason in (
        (receiver.url, "loopback"),
        (f"http://[::1]:{receiver.port}/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://hooks.example.test/hook", "private network"),
    ):
        Endpoint.objects.filter(pk=endpoint_id).update(url=url)
        api("post", f"/api/webhooks/{endpoint_id}/test", key=key)
        latest = Delivery.objects.order_by("-created_at").first()
        assert latest.url == url
        assert sending.deliver(str(latest.pk)) == "failed"
        assert reason in latest.tries.get().error, url
    assert len(receiver.received) == 1


def test_redirects_are_not_followed(api, mint, loopback):
    receiver = Receiver((302, {"Location": "http://169.254.169.254/latest/meta-data/"}))
    try:
        _, key = _pro("redirect@example.com", mint)
        endpoint_id = _add(api, key, receiver.url)["endpoint"]["id"]
        api("post", f"/api/webhooks/{endpoint_id}/test", key=key)
        delivery = Delivery.objects.get()
        assert sending.deliver(str(delivery.pk)) == "failed"
    finally:
        receiver.close()
    attempt = delivery.tries.get()
    assert attempt.status_code == 302 and "not followed" in attempt.error
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at  # retried later


def test_other_users_endpoints_and_deliveries_are_404_everywhere(api, client, mint, loopback):
    _, owner_key = _pro("owner@example.com", mint)
    endpoint_id = _add(api, owner_key, "http://127.0.0.1:9/hook")["endpoint"]["id"]
    api("post", f"/api/webhooks/{endpoint_id}/test", key=owner_key)
    delivery_id = Delivery.objects.get().pk
    other, other_key = _pro("other@example.com", mint)
    base = f"/api/webhooks/{endpoint_id}"
    for method, path, body in [
        ("get", base, None),
        ("patch", base, {"enabled": False}),
        ("delete", base, None),
        ("post", f"{base}/roll-secret", {}),
        ("post", f"{base}/test", None),
        ("get", f"{base}/deliveries", None),
        ("post", f"{base}/deliveries/{delivery_id}/resend", None),
    ]:
        response = api(method, path, key=other_key, json=body)
        assert response.status_code == 404, (method, path)
    assert api("get", "/api/webhooks", key=other_key).json()["data"]["endpoints"] == []
    client.force_login(other)
    page = f"/settings/webhooks/{endpoint_id}/"
    assert client.get(page).status_code == 404
    for action in ("test", "roll", "disable", "delete"):
        assert client.post(f"{page}{action}/").status_code == 404
    assert client.post(f"{page}deliveries/{delivery_id}/resend/").status_code == 404
    assert Endpoint.objects.get().enabled and Delivery.objects.count() == 1


def test_a_plan_without_webhooks_is_refused(api, alice, alice_key, loopback):
    _, key = alice_key  # Free
    response = api("get", "/api/webhooks", key=key)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "INSUFFICIENT_PERMISSIONS"
    assert "does not include this feature" in response.json()["error"]["message"]
    response = api(
        "post", "/api/generate", key=key, json={**SEPIA, "webhook": "https://example.com/h"}
    )
    assert response.status_code == 403


def test_the_webhooks_scope_is_needed(api, mint, loopback):
    user = make_user("scoped@example.com", plan="pro")
    _, key = mint(user, scopes=["generate", "jobs:read"])
    response = api("get", "/api/webhooks", key=key)
    assert response.status_code == 403
    assert response.json()["error"]["details"]["required_scope"] == "webhooks:write"
