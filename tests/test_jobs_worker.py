"""Jobs through a real Celery worker process (not eager mode), in whichever mode the run is."""

from __future__ import annotations

import base64
import io
import os
import signal
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image, ImageChops, ImageStat

from billing.models import CreditBalance
from conftest import make_user, sample_b64, sample_png, worker_env
from studio.models import Job, Template
from studio.tasks import sweep_jobs
from tests.processes import start_worker, stop_process

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_until_final(job_id, seconds: float = 60) -> Job:
    deadline = time.monotonic() + seconds
    while not (job := Job.objects.get(pk=job_id)).is_final and time.monotonic() < deadline:
        time.sleep(0.1)
    return job


def _output(api, secret, data) -> Image.Image:
    assert data["output_url"] == f"http://testserver/api/jobs/{data['id']}/output"  # absolute
    response = api("get", data["output_url"], key=secret)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    return Image.open(io.BytesIO(b"".join(response.streaming_content))).convert("RGB")


def test_every_builtin_template_runs_on_a_worker_and_changes_the_image(api, celery_worker, mint):
    user = make_user("studio@example.com", plan="enterprise")
    _, secret = mint(user)
    original = Image.open(io.BytesIO(sample_png())).convert("RGB")
    templates = list(Template.objects.filter(engine="builtin"))
    assert len(templates) >= 12
    assert len({t.type for t in templates}) >= 3
    outputs = {}
    for template in templates:
        response = api(
            "post",
            "/api/generate",
            key=secret,
            json={"image": sample_b64(), "template": template.name, "templateType": template.type},
        )
        assert response.status_code == 200, (template.name, response.content)
        data = response.json()["data"]
        assert data["status"] == "succeeded", (template.name, data["error"])
        output = _output(api, secret, data)
        outputs[template.name] = output
        same_size = output.size == original.size
        assert not same_size or ImageChops.difference(output, original).getbbox() is not None, (
            template.name
        )
    # A few that can be checked exactly for doing what their names say.
    gray = outputs["Grayscale"]
    red, green, blue = gray.split()
    assert ImageChops.difference(red, green).getbbox() is None
    assert ImageChops.difference(green, blue).getbbox() is None
    assert outputs["Invert"].getpixel((0, 0)) == tuple(255 - c for c in original.getpixel((0, 0)))
    assert outputs["Polaroid"].height > original.height
    assert outputs["Black Frame"].getpixel((0, 0)) == (0, 0, 0)
    assert ImageStat.Stat(outputs["Brighten"]).mean[0] > ImageStat.Stat(original).mean[0]
    assert ImageStat.Stat(outputs["Soft Blur"]).stddev[0] < ImageStat.Stat(original).stddev[0]


@contextmanager
def _upstream(handler: type[BaseHTTPRequestHandler], settings, **worker_settings: str):
    """A real HTTP server as the upstream model, and a worker configured for it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    settings.UPSTREAM_IMAGES_URL = url
    worker = start_worker(worker_env({"UPSTREAM_IMAGES_URL": url, **worker_settings}))
    try:
        yield
    finally:
        stop_process(worker)
        server.shutdown()


class _SlowImageModel(BaseHTTPRequestHandler):
    """An upstream model that takes longer than the job's time limit to answer."""

    def do_POST(self):
        time.sleep(4)
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_job_over_its_time_limit_fails_with_timeout_and_is_refunded(
    api, alice, alice_key, settings, transactional_db
):
    settings.JOB_TIME_LIMIT_S = 1  # the job carries it; the worker's setting words the error
    with _upstream(_SlowImageModel, settings, JOB_TIME_LIMIT_S="1"):
        response = api(
            "post",
            "/api/generate",
            key=alice_key[1],
            json={"prompt": "a slow cat"},
            headers={"Prefer": "respond-async"},
        )
        job = _wait_until_final(response.json()["data"]["id"])
    assert (job.status, job.error_code) == ("failed", "TIMEOUT"), job.error_message
    assert job.error_message == "The job did not finish within 1 s."
    assert CreditBalance.objects.get(user=alice).total == 50


def test_a_worker_killed_mid_job_never_leaves_it_running(api, db, mint, transactional_db, settings):
    user = make_user("kill@example.com", plan="enterprise")
    _, secret = mint(user)
    slow = Template.objects.create(
        name="Slow Blur", type="filters", parameters={"op": "blur", "radius": 120}
    )
    big = Image.new("RGB", (2400, 2400), (10, 200, 30))
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    worker = start_worker(worker_env())
    try:
        response = api(
            "post",
            "/api/generate",
            key=secret,
            json={
                "image": base64.b64encode(buffer.getvalue()).decode(),
                "template": slow.name,
                "templateType": "filters",
            },
            headers={"Prefer": "respond-async"},
        )
        job_id = response.json()["data"]["id"]
        deadline = time.monotonic() + 30
        while Job.objects.get(pk=job_id).status != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Job.objects.get(pk=job_id).status == "running"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        stop_process(worker)
    settings.JOB_STALE_RUNNING_S = 0  # the sweeper in this process: the job is stale now
    worker = start_worker(worker_env({"JOB_STALE_RUNNING_S": "0"}))
    try:
        sweep_jobs()
        job = _wait_until_final(job_id)
    finally:
        stop_process(worker)
    assert job.status in ("succeeded", "failed")
    assert job.attempts >= 2
    balance = CreditBalance.objects.get(user=user)
    if job.status == "failed":
        assert (not balance.allowance and not balance.topup) or job.ledger_entries.filter(
            kind="refund"
        ).exists()


def test_an_admin_retries_a_failed_job_on_the_worker_and_refunds_another(
    admin_client, api, alice, alice_key, transactional_db
):
    """A template is broken and its job fails (and is refunded). The admin fixes the template
    and retries the job, free of charge; the client re-sending its request with the same
    Idempotency-Key waits for the new run, not the old failure. Then the admin refunds a job
    that succeeded."""
    from django.urls import reverse

    broken = Template.objects.create(name="Broken", type="filters", parameters={"op": "nope"})
    fine = Template.objects.get(name="Sepia")
    request = {"image": sample_b64(), "template": "Broken", "templateType": "filters"}
    order = {"Idempotency-Key": "order-42"}
    worker = start_worker(worker_env())
    try:
        failed = api(
            "post",
            "/api/generate",
            key=alice_key[1],
            json=request,
            headers={**order, "Prefer": "respond-async"},
        ).json()["data"]
        assert _wait_until_final(failed["id"]).error_code == "ENGINE_ERROR"
        done = api(
            "post",
            "/api/generate",
            key=alice_key[1],
            json={**request, "template": fine.name},
        ).json()["data"]
        assert done["status"] == "succeeded"
    finally:
        stop_process(worker)
    assert CreditBalance.objects.get(user=alice).total == 49  # the failed one was refunded

    broken.parameters = fine.parameters
    broken.save()
    changelist = reverse("admin:studio_job_changelist")
    page = admin_client.get(changelist).content.decode()
    assert "Retry selected failed jobs (not charged again)" in page
    response = admin_client.post(
        changelist,
        {"action": "retry", "_selected_action": [failed["id"], done["id"]]},
        follow=True,
    )
    assert "Re-queued 1 job(s)" in response.content.decode()  # only the failed one
    assert Job.objects.get(pk=failed["id"]).status == "queued"
    worker = start_worker(worker_env())  # boots while the client below already waits
    try:
        again = api("post", "/api/generate", key=alice_key[1], json=request, headers=order)
    finally:
        stop_process(worker)
    assert again.status_code == 200, again.content
    retried = again.json()["data"]
    assert (retried["id"], retried["status"], retried["attempts"]) == (failed["id"], "succeeded", 1)
    assert retried["error"] is None and retried["output_url"]
    assert CreditBalance.objects.get(user=alice).total == 49

    response = admin_client.post(
        changelist,
        {"action": "refund", "_selected_action": [done["id"], failed["id"]]},
        follow=True,
    )
    # The retried job's debit was refunded when it first failed: only `done` has one left.
    assert "Refunded 1 job(s)" in response.content.decode()
    assert CreditBalance.objects.get(user=alice).total == 50
    assert Job.objects.get(pk=done["id"]).ledger_entries.filter(kind="refund").count() == 1


def test_the_sweeper_requeues_a_lost_job_and_fails_one_out_of_attempts(alice, settings):
    """Beat's sweeper: a queued job whose message was lost runs after all; a job stuck running
    that has used its 3 attempts is failed and refunded."""
    from datetime import timedelta

    from django.utils import timezone

    from nanostudio.celery import app
    from studio import actions

    sepia = Template.objects.get(name="Sepia")
    app.control.purge()  # whatever earlier tests left in the queue
    lost, stuck = (
        actions.submit_generate(alice, None, image=sample_b64(), template=sepia, params={}).job
        for _ in range(2)
    )
    assert app.control.purge() == 2  # no worker was running: both messages are gone
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk=lost.pk).update(created_at=an_hour_ago)
    Job.objects.filter(pk=stuck.pk).update(
        status="running",
        attempts=settings.JOB_MAX_ATTEMPTS,
        started_at=an_hour_ago,
        heartbeat_at=an_hour_ago,
    )
    assert CreditBalance.objects.get(user=alice).total == 48
    worker = start_worker(worker_env())
    try:
        assert sweep_jobs() == {"requeued": 1}
        assert _wait_until_final(lost.pk).status == "succeeded"
    finally:
        stop_process(worker)
    stuck = Job.objects.get(pk=stuck.pk)
    assert (stuck.status, stuck.error_code) == ("failed", "WORKER_LOST")
    assert CreditBalance.objects.get(user=alice).total == 49  # the stuck job's credit is back


def test_one_heartbeat_thread_marks_every_job_its_process_runs_and_only_while_they_run(
    alice, settings
):
    """A worker process's jobs are marked alive together, by one thread, while they run; a job
    claimed once is not claimed again while its mark is fresh."""
    from studio import actions, catalogue
    from studio.tasks import claim, heartbeat

    settings.JOB_HEARTBEAT_EVERY_S = 0.05
    sepia = Template.objects.get(name="Sepia")
    first, second = (
        actions.submit_generate(alice, None, image=sample_b64(), template=sepia, params={}).job
        for _ in range(2)
    )
    claimed = [claim(str(first.pk)), claim(str(second.pk))]
    assert [(job.status, job.attempts) for job in claimed] == [("running", 1)] * 2
    assert claimed[0].template is catalogue.by_id(sepia.pk)  # the process's copy, no query
    assert claim(str(first.pk)) is None  # one worker runs a job
    marked = {job.pk: job.heartbeat_at for job in claimed}

    def marks() -> dict:
        return dict(Job.objects.filter(pk__in=marked).values_list("pk", "heartbeat_at"))

    with heartbeat(first.pk), heartbeat(second.pk):
        deadline = time.monotonic() + 10
        while any(at == marked[pk] for pk, at in marks().items()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert all(at > marked[pk] for pk, at in marks().items())
        assert [t.name for t in threading.enumerate()].count("heartbeat") == 1
    time.sleep(0.1)  # the beat in flight, if any, ends
    ended = marks()
    time.sleep(0.2)  # four beats' time
    assert marks() == ended
