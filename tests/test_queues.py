"""Queues by kind of work: a job calling a slow image provider waits on the `upstream` workers
and holds up nobody's builtin job; the periodic work has a queue of its own."""

from __future__ import annotations

import time

import pytest
from django.conf import settings as django_settings

from conftest import make_user, sample_b64, worker_env
from studio.models import Job
from tests.processes import start_worker, stop_process

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_slow_provider_call_does_not_delay_a_builtin_job(api, mint, fake):
    fake.delay_s = 5  # the provider answers after 5 s
    user = make_user("queues@example.com", plan="pro")
    _, secret = mint(user)
    env = worker_env(fake.settings)
    # As the Procfile runs them: one CPU worker, and threads for provider calls.
    cpu = start_worker(env, "--queues", "images,ocr,celery", "--concurrency", "1")
    upstream = start_worker(
        env,
        "--queues",
        "upstream",
        "--pool",
        "threads",
        "--concurrency",
        "4",
        "--hostname",
        "upstream@%h",
    )
    quick_body = {"image": sample_b64(), "template": "Sepia", "templateType": "filters"}
    try:
        # The CPU worker up and warm first (it loads the OCR models as it starts): what is
        # timed below is the queue, not a worker's start.
        assert api("post", "/api/generate", key=secret, json=quick_body).status_code == 200
        slow = api(
            "post",
            "/api/generate",
            key=secret,
            json={"prompt": "a very slow cat"},
            headers={"Prefer": "respond-async"},
        )
        assert slow.status_code == 202, slow.content
        slow_job = Job.objects.get(pk=slow.json()["data"]["id"])
        assert slow_job.queue == "upstream"
        deadline = time.monotonic() + 20
        while Job.objects.get(pk=slow_job.pk).status == "queued" and time.monotonic() < deadline:
            time.sleep(0.05)  # the provider call has started
        submitted = time.monotonic()
        quick = api("post", "/api/generate", key=secret, json=quick_body)
        waited = time.monotonic() - submitted
        assert quick.status_code == 200, quick.content
        quick_job = Job.objects.get(pk=quick.json()["data"]["id"])
        assert quick_job.queue == "images" and quick_job.status == "succeeded"
        assert waited < 1.0, waited
        assert Job.objects.get(pk=slow_job.pk).status == "running"  # still at the provider
    finally:
        stop_process(cpu)
        stop_process(upstream)


def test_each_kind_of_work_has_its_queue():
    routes = django_settings.CELERY_TASK_ROUTES
    assert routes["usage.*"] == routes["billing.*"] == {"queue": "maintenance"}
    assert routes["studio.sweep_jobs"] == routes["studio.purge_old_outputs"]
    assert routes["studio.sweep_jobs"] == {"queue": "maintenance"}
    assert routes["webhooks.*"] == {"queue": "webhooks"}
    ocr = Job(kind=Job.Kind.OCR, params={"language": "eng"})
    builtin = Job(kind=Job.Kind.GENERATE, params={})
    provider = Job(kind=Job.Kind.GENERATE, params={"engine": "gemini", "model": "x"})
    assert (ocr.queue, builtin.queue, provider.queue) == ("ocr", "images", "upstream")
