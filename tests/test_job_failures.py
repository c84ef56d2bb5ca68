"""A job that fails, times out or is cancelled: the submit answers with its error (never a
success), the refund commits with the state change, and nothing is charged twice."""

from __future__ import annotations

import time

import pytest

from billing.models import CreditBalance, LedgerEntry
from conftest import sample_b64, submit_in_background, worker_env
from studio import actions
from studio.models import Job, Template
from studio.tasks import fail
from tests.processes import start_worker, stop_process

pytestmark = pytest.mark.django_db(transaction=True)


def _broken_template() -> Template:
    return Template.objects.create(name="Broken", type="filters", parameters={"op": "nope"})


def test_a_sync_submit_whose_job_fails_answers_502_and_is_already_refunded(api, alice, alice_key):
    _broken_template()
    worker = start_worker(worker_env())
    try:
        response = api(
            "post",
            "/api/generate",
            key=alice_key[1],
            json={"image": sample_b64(), "template": "Broken", "templateType": "filters"},
        )
        # Read at once, as a client checking its balance right after the answer would.
        balance = CreditBalance.objects.get(user=alice).total
    finally:
        stop_process(worker)
    assert response.status_code == 502, response.content
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "ENGINE_ERROR"
    assert body["error"]["message"].endswith("Its credits were refunded.")
    assert body["error"]["details"]["refunded"] is True
    job = body["error"]["details"]["job"]
    assert (job["status"], job["error"]["code"]) == ("failed", "ENGINE_ERROR")
    assert job["finished_at"].endswith("Z")
    assert balance == 50
    assert response["X-Credits-Remaining"] == "50"
    # Reading the failed job is a successful read.
    read = api("get", f"/api/jobs/{job['id']}", key=alice_key[1])
    assert read.status_code == 200
    assert read.json()["data"]["status"] == "failed"


def test_a_waiter_on_a_job_cancelled_elsewhere_answers_409_at_once(api, alice, alice_key):
    """No worker runs: the job stays queued while the first client waits; a second call
    cancels it, and the waiter is woken by the cancel instead of sleeping its 30 s."""
    started = time.monotonic()
    waiter, answers = submit_in_background(api, alice_key[1])
    deadline = time.monotonic() + 10
    while not Job.objects.filter(user=alice).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    job = Job.objects.get(user=alice)
    cancel = api("post", f"/api/jobs/{job.pk}/cancel", key=alice_key[1])
    assert cancel.status_code == 200
    assert cancel.json()["data"]["status"] == "cancelled"
    waiter.join(timeout=20)
    elapsed = time.monotonic() - started
    assert elapsed < 10
    response = answers[0]
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "CANCELLED"
    assert error["details"]["refunded"] is True
    assert error["details"]["job"]["status"] == "cancelled"
    job.refresh_from_db()
    assert job.finished_at is not None
    assert CreditBalance.objects.get(user=alice).total == 50


def test_a_replayed_submit_of_a_failed_job_gets_the_same_error(api, alice, alice_key):
    body = {"image": sample_b64(), "template": "Sepia", "templateType": "filters"}
    headers = {"Idempotency-Key": "order-7", "Prefer": "respond-async"}
    first = api("post", "/api/generate", key=alice_key[1], json=body, headers=headers)
    assert first.status_code == 202
    job = Job.objects.get(pk=first.json()["data"]["id"])
    fail(job, "TIMEOUT", "The job did not finish within 60 s.")
    again = api("post", "/api/generate", key=alice_key[1], json=body, headers=headers)
    assert again.status_code == 504
    error = again.json()["error"]
    assert (error["code"], error["details"]["job"]["id"]) == ("TIMEOUT", str(job.pk))
    assert error["details"]["refunded"] is True
    assert CreditBalance.objects.get(user=alice).total == 50


def test_failing_a_job_and_its_refund_commit_together(alice, monkeypatch):
    """A crash between the state change and the refund leaves the job as it was, never
    failed and still charged; the next attempt to end it fails and refunds it."""
    template = Template.objects.get(name="Sepia")
    job = actions.submit_generate(alice, None, image=sample_b64(), template=template, params={}).job
    Job.objects.filter(pk=job.pk).update(status="running")

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed here")

    with monkeypatch.context() as patch:
        patch.setattr("studio.actions.refund", crash)
        with pytest.raises(RuntimeError):
            fail(job, "ENGINE_ERROR", "boom")
    job.refresh_from_db()
    assert (job.status, job.error_code, job.finished_at) == ("running", "", None)
    assert CreditBalance.objects.get(user=alice).total == 49
    assert not LedgerEntry.objects.filter(job=job, kind="refund").exists()

    fail(job, "ENGINE_ERROR", "boom")
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "ENGINE_ERROR")
    assert job.finished_at is not None
    assert CreditBalance.objects.get(user=alice).total == 50
    assert LedgerEntry.objects.filter(job=job, kind="refund").count() == 1
    fail(job, "ENGINE_ERROR", "again")  # a second end changes nothing
    assert CreditBalance.objects.get(user=alice).total == 50
    assert LedgerEntry.objects.filter(job=job, kind="refund").count() == 1


def test_a_cancel_sets_finished_at_and_refunds_in_one_step(alice):
    template = Template.objects.get(name="Sepia")
    job = actions.submit_generate(alice, None, image=sample_b64(), template=template, params={}).job
    assert actions.cancel(job) is True
    assert (job.status, job.error_code) == ("cancelled", "CANCELLED")
    assert job.finished_at is not None
    assert CreditBalance.objects.get(user=alice).total == 50
    assert actions.cancel(job) is False
    assert LedgerEntry.objects.filter(job=job, kind="refund").count() == 1
