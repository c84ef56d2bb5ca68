"""Events from the other apps, turned into deliveries (and notices) in their transactions."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.dispatch import receiver

from apikeys.models import ApiKey
from apikeys.signals import key_revoked
from billing.signals import credits_granted, credits_spent
from nanostudio.schemas import utc_timestamp
from studio.models import Job
from studio.signals import job_finished
from webhooks import notices
from webhooks.delivery import emit

logger = logging.getLogger("nanostudio.webhooks")
JOB_EVENTS = {"succeeded": "job.succeeded", "failed": "job.failed", "cancelled": "job.cancelled"}


def never_breaks_the_change(handler: Callable[..., None]) -> Callable[..., None]:
    """Events are recorded in the transaction of the change they report, in a savepoint: a
    failure here is logged and loses the event, never the job, key or charge itself."""

    @functools.wraps(handler)
    def guarded(**kwargs: Any) -> None:
        try:
            with transaction.atomic():
                handler(**kwargs)
        except Exception:
            logger.exception("event not recorded", extra={"handler": handler.__name__})

    return guarded


@receiver(job_finished)
@never_breaks_the_change
def on_job_finished(job: Job, status: str, **_: Any) -> None:
    from studio.api import JobOut, job_out

    def data() -> dict[str, Any]:  # as GET /api/jobs/{id} shows it now, times ending in `Z`
        ended = Job.objects.select_related("template").get(pk=job.pk)
        return JobOut.model_validate(job_out(ended)).model_dump(mode="json")

    emit(
        job.user_id,
        JOB_EVENTS[status],
        data,  # built only if someone listens
        job_id=job.pk,
        extra_url=str(job.params.get("webhook") or ""),
    )


def key_data(key: ApiKey) -> dict[str, Any]:
    return {
        "id": str(key.pk),
        "name": key.name,
        "hint": key.hint,
        "expires_at": utc_timestamp(key.expires_at) if key.expires_at else None,
        "revoked_at": utc_timestamp(key.revoked_at) if key.revoked_at else None,
    }


@receiver(key_revoked)
@never_breaks_the_change
def on_key_revoked(key: ApiKey, **_: Any) -> None:
    emit(key.user_id, "key.revoked", key_data(key))


@receiver(credits_granted)
@never_breaks_the_change
def on_credits_granted(user_id: int, amount: int, reason: str, **_: Any) -> None:
    from billing.models import CreditBalance

    balance = CreditBalance.objects.get(user_id=user_id)
    emit(user_id, "credits.granted", {"amount": amount, "reason": reason, "balance": balance.total})


@receiver(credits_spent)
@never_breaks_the_change
def on_credits_spent(user_id: int, allowance: int, left: int, **_: Any) -> None:
    notices.credits_low(user_id, allowance, left)
