"""Job execution on the worker. Tasks take a job id and are safe to run twice."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from celery import shared_task, signals
from celery.concurrency import get_implementation
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from kombu import Exchange, Producer
from kombu.exceptions import OperationalError
from kombu.utils.uuid import uuid as uuid_text

from nanostudio.logging import tag_task
from studio import catalogue, engines, storage, waiting
from studio.images import InvalidImage
from studio.models import Job, JobInput

logger = logging.getLogger("nanostudio.jobs")
SWEEP_BATCH = 500


def fail(job: Job, code: str, message: str) -> None:
    """Fail the job and refund it, in one transaction (Job.finish)."""
    if waiting.finish(job, Job.Status.FAILED, error_code=code, error_message=message):
        logger.info("job failed", extra={"job_id": str(job.pk), "error_code": code})


def claim(job_id: str) -> Job | None:
    """The job, if this worker may run it now (Job.objects.claim); else None."""
    job = Job.objects.claim(job_id)
    if job is None:
        job = Job.objects.filter(pk=job_id).first()  # None: deleted (account gone)
        if job and not job.is_final and job.attempts >= settings.JOB_MAX_ATTEMPTS:
            fail(job, "WORKER_LOST", f"Gave up after {job.attempts} attempts.")
        return None
    if job.template_id and (template := catalogue.by_id(job.template_id)):
        job.template = template  # the process's copy, no query (a disabled one is read)
    return job


def enqueue(job: Job) -> None:
    """Send a job to the workers. Celery carries the time limit in the message, so it is read
    from settings here, as the job is sent.

    Never raises: it runs after the job's commit, when the job is accepted and charged, so a
    broker that is down must not turn that into an error answer (a retry would pay twice).
    The sweeper sends a job whose message never arrived."""
    limit = settings.JOB_TIME_LIMIT_S
    job_id = str(job.pk)
    # Celery builds the message; the process's producer publishes it straight to the job's
    # queue. apply_async's way there (a producer taken from the pool and given back, routes,
    # option merging, publish signals, kombu's retry wrapper) was 0.46 M of its 1.2 M instructions;
    # redis-py reconnects a connection the broker dropped, and the sweeper covers the rest.
    headers, properties, body, _ = run_job.app.amqp.as_task_v2(
        uuid_text(),
        run_job.name,
        (job_id,),
        {},
        soft_time_limit=limit,
        time_limit=limit + 15,
        ignore_result=run_job.ignore_result,
        argsrepr=repr((job_id,)),
        kwargsrepr="{}",
    )
    tag_task(headers)
    producer, broker_errors = _sender()
    try:
        producer.publish(body, routing_key=job.queue, headers=headers, **properties)
    except broker_errors as exc:
        logger.warning(
            "job not sent, the sweeper will send it",
            extra={"job_id": job_id, "error": str(exc)},
        )


_senders: dict[int, tuple[Producer, tuple[type[BaseException], ...]]] = {}


def _sender() -> tuple[Producer, tuple[type[BaseException], ...]]:
    """The producer this process sends jobs with, kept for its life (a child process makes
    its own: the parent's connections are not its), and what it raises when the broker cannot
    take a message (kombu's OperationalError; for Redis, redis-py's connection and response
    errors). Its channel is made at the first publish, and again after one that could not."""
    pid = os.getpid()
    if pid not in _senders:
        app = run_job.app
        connection = app.connection_for_write()
        producer = app.amqp.Producer(
            connection,
            # The nameless exchange: the routing key is the queue, as Celery sends to a queue.
            exchange=Exchange("", delivery_mode=app.conf.task_default_delivery_mode),
            serializer=app.conf.task_serializer,
            auto_declare=False,
        )
        errors: tuple[type[BaseException], ...] = (
            OperationalError,
            *connection.connection_errors,
            *connection.channel_errors,
        )
        _senders[pid] = (producer, errors)
    return _senders[pid]


class _Heartbeat:
    """One thread per worker process marks the jobs the process is running alive, every
    JOB_HEARTBEAT_EVERY_S, in one UPDATE (an engine may hold its own thread for a minute).
    A job whose heartbeat stops has lost its worker: the sweeper hands it to another within
    JOB_STALE_RUNNING_S, never while it is alive. One thread for the process, not one per job:
    starting and joining a thread was 7 % of a small job's time on the worker."""

    def __init__(self) -> None:
        self.running: set[uuid.UUID | str] = set()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    @contextmanager
    def __call__(self, job_id: uuid.UUID | str) -> Iterator[None]:
        with self.lock:
            self.running.add(job_id)
            if self.thread is None or not self.thread.is_alive():  # first job, or a new fork
                self.thread = threading.Thread(target=self.beat, name="heartbeat", daemon=True)
                self.thread.start()
        try:
            yield
        finally:
            with self.lock:
                self.running.discard(job_id)

    def beat(self) -> None:
        while True:
            time.sleep(settings.JOB_HEARTBEAT_EVERY_S)
            with self.lock:
                running = list(self.running)
            if not running:
                connection.close()  # this thread's own connection, kept while jobs run
                continue
            try:
                Job.objects.filter(pk__in=running, status=Job.Status.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
            except DatabaseError:
                logger.warning("job heartbeat not written", extra={"job_ids": str(running)})
                connection.close()  # a new one next time


heartbeat = _Heartbeat()


@signals.worker_init.connect
def _prepare_ocr(sender: Any, **_: Any) -> None:
    """A worker that takes OCR jobs shares the cores among its processes, and loads the
    models as each process starts (prefork) or now (other pools), not at its first job."""
    queues = sender.app.amqp.queues.consume_from
    if queues and "ocr" not in queues:
        return
    from studio.engines import ocr

    if not ocr.available():
        return
    prefork = issubclass(get_implementation(sender.pool_cls), PreforkPool)
    ocr.size_for_worker(sender.concurrency if prefork else 1)
    if prefork:
        signals.worker_process_init.connect(_warm_ocr, weak=False)
    else:
        _warm_ocr()


def _warm_ocr(**_: Any) -> None:
    from studio.engines import ocr

    started = time.perf_counter()
    ocr.warm()
    logger.info("OCR models loaded", extra={"seconds": round(time.perf_counter() - started, 2)})


@shared_task(name="studio.run_job", acks_late=True)
def run_job(job_id: str) -> None:
    job = claim(job_id)
    if job is None:
        return
    try:
        with heartbeat(job.pk):
            image = storage.open_input(job)
            engine = engines.get(job.engine_name)
            result = engine.run(job.template, image, job.params)
            output = storage.save_image(job.pk, "output.png", result.image) if result.image else ""
    except InvalidImage as exc:  # let through by the request's cheap check; refunded
        fail(job, "INVALID_IMAGE", str(exc))
        return
    except SoftTimeLimitExceeded:
        fail(job, "TIMEOUT", f"The job did not finish within {settings.JOB_TIME_LIMIT_S} s.")
        return
    except engines.ContentRejected as exc:
        fail(job, "CONTENT_REJECTED", str(exc))
        return
    except engines.EngineError as exc:
        fail(job, "ENGINE_ERROR", str(exc))
        return
    except Exception as exc:  # a bug in an engine must still end the job and refund it
        logger.exception("engine crashed", extra={"job_id": str(job.pk)})
        fail(job, "ENGINE_ERROR", f"The engine failed ({exc.__class__.__name__}).")
        return
    waiting.finish(job, Job.Status.SUCCEEDED, output_file=output, result=result.data)


@shared_task(name="studio.sweep_jobs", soft_time_limit=60, time_limit=75)
def sweep_jobs() -> dict[str, Any]:
    """Beat, every 10 s: send again jobs left queued (their message was lost, e.g. the broker
    restarted empty), and retry or fail jobs whose worker died (their heartbeat stopped)."""
    lost = Job.objects.take_lost(SWEEP_BATCH)
    for lost_job in lost:
        enqueue(lost_job)
    requeued = len(lost)
    for job in Job.objects.stale()[:SWEEP_BATCH]:
        if job.attempts >= settings.JOB_MAX_ATTEMPTS:
            fail(job, "WORKER_LOST", "The worker running this job stopped.")
        else:
            enqueue(job)  # claim() takes over a running job whose heartbeat stopped
            requeued += 1
    return {"requeued": requeued}


@shared_task(name="studio.purge_old_outputs", soft_time_limit=300, time_limit=360)
def purge_old_outputs() -> int:
    """Beat: delete job files, and inputs kept in the database, past the retention period (the
    job rows stay, as history). Returns how many jobs had something deleted."""
    from studio.idempotency import purge_expired

    cutoff = timezone.now() - timedelta(days=settings.JOB_OUTPUT_RETENTION_DAYS)
    old = Job.objects.filter(created_at__lt=cutoff)
    purged = set()
    for job in old.exclude(input_file="", output_file="").iterator():
        storage.delete(job.input_file, job.output_file)
        Job.objects.filter(pk=job.pk).update(input_file="", output_file="")
        purged.add(job.pk)
    kept = JobInput.objects.filter(job__in=old)
    purged.update(kept.values_list("job_id", flat=True))
    kept.delete()
    purge_expired()
    return len(purged)
