"""`make bench ARGS=webhooks`: deliveries per second to a local receiver that answers at once,
and what a subscribed endpoint adds to a job's submit-to-done time (the job must not wait
for its webhook)."""

from __future__ import annotations

import os
import statistics
import time

from bench.harness import ENV, PROXY_HEADERS, bench_user, gunicorn, record, sepia_body
from tests.processes import start_webhooks_worker, start_worker, stop_process
from tests.receiver import Receiver

ENDPOINTS = 8
PER_ENDPOINT = 50
JOBS = 30


def run() -> None:

    import requests
    from django.db import transaction

    from billing.models import Plan
    from webhooks.delivery import emit
    from webhooks.models import Delivery
    from webhooks.service import create_endpoint

    env = {**os.environ, **ENV, "WEBHOOK_ALLOW_LOOPBACK": "1"}
    os.environ["WEBHOOK_ALLOW_LOOPBACK"] = "1"
    from django.conf import settings

    settings.WEBHOOK_ALLOW_LOOPBACK = True
    receiver = Receiver()
    users = [bench_user(f"hooks{n}@example.com")[0] for n in range(ENDPOINTS)]
    Plan.objects.filter(slug="bench").update(
        features={"job_kinds": ["generate", "ocr"], "template_types": [], "webhooks": True}
    )
    for user in users:
        create_endpoint(
            user, url=receiver.url, description="bench", events=["key.revoked"], enabled=True
        )
    hooks = start_webhooks_worker(env, 16)
    try:
        time.sleep(3)  # the worker is up
        total = ENDPOINTS * PER_ENDPOINT
        started = time.perf_counter()
        with transaction.atomic():
            for user in users:
                for n in range(PER_ENDPOINT):
                    emit(user.pk, "key.revoked", {"n": n})
        receiver.wait_for(total, 120)
        elapsed = time.perf_counter() - started
        delivered = Delivery.objects.filter(status="delivered").count()
        record(
            f"webhooks: deliveries/s, {total} to {ENDPOINTS} endpoints on one local receiver",
            delivered / elapsed,
        )
        record("webhooks: delivered of sent", f"{delivered}/{total}")

        # Submit-to-done with and without a subscribed endpoint, interleaved.
        _, plain_key = bench_user("nohook@example.com", scopes=["generate", "jobs:read"])
        hooked_user, hooked_key = bench_user("hooked@example.com")
        create_endpoint(
            hooked_user, url=receiver.url, description="", events=["job.succeeded"], enabled=True
        )
        body = sepia_body()
        jobs_worker = start_worker(env, "--concurrency", "2")
        try:
            with gunicorn() as base:
                session = requests.Session()
                times: dict[str, list[float]] = {"without": [], "with": []}
                for _ in range(JOBS):
                    for label, key in (("without", plain_key), ("with", hooked_key)):
                        headers = {**PROXY_HEADERS, "Authorization": f"Bearer {key}"}
                        began = time.perf_counter()
                        response = session.post(
                            f"{base}/api/generate", json=body, headers=headers, timeout=60
                        )
                        assert response.json()["data"]["status"] == "succeeded", response.text
                        times[label].append((time.perf_counter() - began) * 1000)
        finally:
            stop_process(jobs_worker)
        without, with_ = statistics.median(times["without"]), statistics.median(times["with"])
        record("webhooks: submit-to-done, no endpoint (median of 30)", without, "ms")
        record("webhooks: submit-to-done, one subscribed endpoint (median of 30)", with_, "ms")
        record("webhooks: added by the endpoint", with_ - without, "ms")
    finally:
        stop_process(hooks)
        receiver.close()
