"""Waiting for a job without holding a database connection.

In production mode the worker pushes to a Redis list when a job ends and the waiting request
blocks on it (BLPOP): no polling, and past the first HOLD_CONNECTION_S the request's database
connection is given back while it waits, so many waiting clients need neither connections nor
CPU. Embedded mode polls.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction

from studio.models import Job

logger = logging.getLogger("nanostudio.jobs")
POLL_S = 0.1
# How long a waiter keeps its database connection before giving it back for the rest.
HOLD_CONNECTION_S = 0.25
DONE_TTL_S = 120


@functools.cache
def _redis() -> redis.Redis:
    """One client (and connection pool) per process; each waiter borrows a connection."""
    return redis.Redis.from_url(settings.REDIS_LIMITER_URL, socket_timeout=settings.JOB_WAIT_S + 5)


def _done_key(job_id: uuid.UUID | str) -> str:
    return f"job-done:{job_id}"


def finish(job: Job, status: str, **fields: Any) -> bool:
    """End the job (Job.finish) and, after the commit, wake whoever waits for it."""
    done = job.finish(status, **fields)
    if done:
        transaction.on_commit(lambda: notify_done(job.pk), robust=True)
    return done


def notify_done(job_id: uuid.UUID | str) -> None:
    """Called after the commit that ends a job. Without Redis the waiters time out and
    answer 202 (the client polls), so a lost notice is logged, not raised."""
    if settings.REDIS_URL:
        pipe = _redis().pipeline()
        pipe.rpush(_done_key(job_id), 1)
        pipe.expire(_done_key(job_id), DONE_TTL_S)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            logger.warning(
                "job done-notice not sent", extra={"job_id": str(job_id), "error": str(exc)}
            )


def wait_for(job: Job, timeout_s: float) -> Job:
    """The job once final, or as it is when `timeout_s` runs out or a service to wait on (Redis,
    or the database under its connection ceiling) is lost: the job is accepted and charged
    by then, so the caller answers 202 for the client to poll, never an error it would retry
    and pay for again."""
    if job.is_final or timeout_s <= 0:
        return job
    try:
        return _wait(job, timeout_s)
    except DatabaseError:
        logger.warning("job wait cut short: database unreachable", extra={"job_id": str(job.pk)})
        return job


def _wait(job: Job, timeout_s: float) -> Job:
    deadline = time.monotonic() + timeout_s
    if settings.REDIS_URL:
        # The first wait keeps the database connection: most jobs end within it, and a new
        # connection costs ~5 ms. Longer waits give it back (free to take again from a pool).
        hold = 0.0 if getattr(settings, "DB_POOL_MAX", 0) else HOLD_CONNECTION_S
        # A notice can be stale (a job retried after it ended once): wait again if not final.
        while not job.is_final and (left := deadline - time.monotonic()) > 0:
            if hold:
                left, hold = min(left, hold), 0.0
            else:
                connection.close()
            try:
                _redis().blpop([_done_key(job.pk)], timeout=left)
            except redis.RedisError:
                logger.warning(
                    "job wait cut short: Redis unreachable", extra={"job_id": str(job.pk)}
                )
                deadline = 0
            close_old_connections()
            job.refresh_from_db(fields=Job.RUN_FIELDS)  # keeps the template it has
        return job
    while not job.is_final and time.monotonic() < deadline:
        time.sleep(POLL_S)
        job.refresh_from_db(fields=Job.RUN_FIELDS)
    return job
