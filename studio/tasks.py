"""Job execution on the worker. Tasks take a job id and are safe to run twice."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from billing.ledger import refund
from studio import engines, storage
from studio.models import Job

logger = logging.getLogger("nanostudio.jobs")


def fail(job: Job, code: str, message: str) -> None:
    if job.finish(Job.Status.FAILED, error_code=code, error_message=message[:500]):
        refund(job, f"Job failed: {code}")
        logger.info("job failed", extra={"job_id": str(job.pk), "error_code": code})


def claim(job_id: str) -> Job | None:
    """Take the job for this worker: a conditional update, so only one worker runs it."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.JOB_STALE_RUNNING_S)
    claimed = (
        Job.objects.filter(pk=job_id, attempts__lt=settings.JOB_MAX_ATTEMPTS)
        .filter(Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RUNNING, started_at__lt=stale))
        .update(status=Job.Status.RUNNING, attempts=F("attempts") + 1, started_at=now)
    )
    job = Job.objects.select_related("template").filter(pk=job_id).first()
    if job is None:
        return None  # deleted (account gone): nothing to do
    if not claimed:
        if not job.is_final and job.attempts >= settings.JOB_MAX_ATTEMPTS:
            fail(job, "TOO_MANY_ATTEMPTS", f"Gave up after {job.attempts} attempts.")
        return None
    return job


def enqueue(job_id) -> None:
    """Send a job to the workers. Celery carries the time limit in the message, so it is read
    from settings here, as the job is sent."""
    limit = settings.JOB_TIME_LIMIT_S
    run_job.apply_async((str(job_id),), soft_time_limit=limit, time_limit=limit + 15)


@shared_task(name="studio.run_job", acks_late=True)
def run_job(job_id: str) -> None:
    job = claim(job_id)
    if job is None:
        return
    try:
        image = storage.open_image(job.input_file) if job.input_file else None
        engine = engines.get(job.engine_name)
        result = engine.run(job.template, image, job.params)
        output = storage.save_image(job.pk, "output.png", result.image) if result.image else ""
    except SoftTimeLimitExceeded:
        fail(job, "TIMEOUT", f"The job did not finish within {settings.JOB_TIME_LIMIT_S} s.")
        return
    except engines.EngineError as exc:
        fail(job, "ENGINE_ERROR", str(exc))
        return
    except Exception as exc:  # a bug in an engine must still end the job and refund it
        logger.exception("engine crashed", extra={"job_id": str(job.pk)})
        fail(job, "ENGINE_ERROR", f"The engine failed ({exc.__class__.__name__}).")
        return
    job.finish(Job.Status.SUCCEEDED, output_file=output, result=result.data, error_code="")


@shared_task(name="studio.sweep_jobs", soft_time_limit=120, time_limit=150)
def sweep_jobs() -> dict:
    """Beat: re-enqueue jobs left queued, retry or fail jobs whose worker died."""
    now = timezone.now()
    requeued = 0
    for job_id in Job.objects.filter(
        status=Job.Status.QUEUED, created_at__lt=now - timedelta(seconds=60)
    ).values_list("pk", flat=True)[:500]:
        enqueue(job_id)
        requeued += 1
    stuck = Job.objects.filter(
        status=Job.Status.RUNNING,
        started_at__lt=now - timedelta(seconds=settings.JOB_STALE_RUNNING_S),
    )
    for job in stuck[:500]:
        if job.attempts >= settings.JOB_MAX_ATTEMPTS:
            fail(job, "WORKER_LOST", "The worker running this job stopped.")
        else:
            enqueue(job.pk)  # claim() accepts a stale running job
            requeued += 1
    return {"requeued": requeued}


@shared_task(name="studio.purge_old_outputs", soft_time_limit=300, time_limit=360)
def purge_old_outputs() -> int:
    """Beat: delete job files past the retention period (the job rows stay, as history)."""
    from studio.idempotency import purge_expired

    cutoff = timezone.now() - timedelta(days=settings.JOB_OUTPUT_RETENTION_DAYS)
    purged = 0
    for job in (
        Job.objects.filter(created_at__lt=cutoff).exclude(input_file="", output_file="").iterator()
    ):
        storage.delete_job_files(job.pk)
        Job.objects.filter(pk=job.pk).update(input_file="", output_file="")
        purged += 1
    purge_expired()
    return purged
