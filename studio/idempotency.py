"""`Idempotency-Key` on submits: a retried request gets the original job, never a second one.

The unique (user, key) row is inserted before the job is accepted, so of N concurrent
requests with one key exactly one goes on; the others see IN_USE until the job exists, and
the original job after. A request that is rejected frees its key for a corrected retry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from studio.models import IdempotencyKey, Job
from studio.rejections import Rejected

if TYPE_CHECKING:
    from accounts.models import User

KEEP_FOR = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class Replay(Exception):
    def __init__(self, job: Job) -> None:
        self.job = job


@contextmanager
def idempotent(
    user: User, key: str | None, body: bytes, path: str
) -> Iterator[Callable[[Job], None]]:
    """Wrap accepting a job. Yields a setter for the new job; raises Replay for a repeat."""
    if not key:
        yield lambda job: None
        return
    if len(key) > MAX_KEY_LENGTH:
        raise Rejected(
            "VALIDATION_ERROR",
            "The Idempotency-Key is too long.",
            {"fields": {"Idempotency-Key": f"At most {MAX_KEY_LENGTH} characters."}},
        )
    digest = hashlib.sha256(path.encode() + b"\n" + body).hexdigest()
    IdempotencyKey.objects.filter(
        user=user, key=key, created_at__lt=timezone.now() - KEEP_FOR
    ).delete()
    try:
        with transaction.atomic():
            record = IdempotencyKey.objects.create(user=user, key=key, request_hash=digest)
    except IntegrityError:
        existing = IdempotencyKey.objects.filter(user=user, key=key).select_related("job").first()
        if existing is None:  # freed by a rejected request just now
            raise Rejected(
                "IDEMPOTENCY_KEY_IN_USE", "A request with this Idempotency-Key is in progress."
            ) from None
        if existing.request_hash != digest:
            raise Rejected(
                "IDEMPOTENCY_KEY_REUSED",
                "This Idempotency-Key was used with a different request body.",
            ) from None
        if existing.job is None:
            raise Rejected(
                "IDEMPOTENCY_KEY_IN_USE",
                "A request with this Idempotency-Key is in progress; retry shortly.",
                headers={"Retry-After": "1"},
            ) from None
        raise Replay(existing.job) from None

    def remember(job: Job) -> None:
        IdempotencyKey.objects.filter(pk=record.pk).update(job=job)

    try:
        yield remember
    except BaseException:
        IdempotencyKey.objects.filter(pk=record.pk, job__isnull=True).delete()
        raise


def purge_expired() -> int:
    return IdempotencyKey.objects.filter(created_at__lt=timezone.now() - KEEP_FOR).delete()[0]
