"""Sending events: a delivery row per event and URL, written in the transaction that makes the
change it reports, sent by Celery after that commit on the `webhooks` queue.

At least once: every attempt carries the delivery's `webhook-id`; a 2xx answer delivers it.
Anything else (including a redirect, which is not followed, and no answer within
WEBHOOK_TIMEOUT_S) is retried on WEBHOOK_RETRY_SCHEDULE_S with jitter, 8 attempts over about
a day, then given up. An endpoint failing for WEBHOOK_DISABLE_AFTER_S (3 days) is disabled
and its owner told. At most WEBHOOK_IN_FLIGHT_PER_ENDPOINT attempts to one endpoint run at
once, so a slow or dead endpoint cannot hold the queue's threads that others need.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from nanostudio import outbound
from webhooks.models import Attempt, Delivery, Endpoint, JobWebhookSecret

logger = logging.getLogger("nanostudio.webhooks")
DISPATCH_BATCH = 500
IN_FLIGHT_TTL_S = 60  # a crashed sender's place frees itself
DRAIN_LIMIT = 200  # deliveries one task sends to its endpoint before it lets another go


def emit(
    user_id: int,
    event: str,
    data: dict[str, Any] | Callable[[], dict[str, Any]],
    *,
    job_id: uuid.UUID | None = None,
    extra_url: str = "",
) -> list[Delivery]:
    """Record `event` for each of the user's enabled endpoints that subscribe to it (and
    `extra_url`, a job's own webhook), sent after the current transaction commits. `data`
    may be a function: it is called only if someone listens."""
    endpoints = [
        endpoint
        for endpoint in Endpoint.objects.filter(user_id=user_id, enabled=True)
        if event in endpoint.events
    ]
    targets: list[tuple[Endpoint | None, str]] = [(e, e.url) for e in endpoints]
    if extra_url:
        targets.append((None, extra_url))
    if not targets:
        return []
    payload = data() if callable(data) else data
    now = timezone.now()
    deliveries = Delivery.objects.bulk_create(
        Delivery(
            user_id=user_id,
            endpoint=endpoint,
            job_id=job_id,
            url=url,
            event=event,
            message_id=Delivery.new_message_id(),
            payload=payload,
            next_attempt_at=now,
            created_at=now,
        )
        for endpoint, url in targets
    )
    for delivery in deliveries:
        transaction.on_commit(functools.partial(send_soon, delivery.pk), robust=True)
    return deliveries


def send_soon(delivery_id: uuid.UUID) -> None:
    """Queue an attempt now; if the broker is down, the dispatcher sends it when it is back."""
    try:
        deliver.delay(str(delivery_id))
    except Exception as exc:
        logger.warning(
            "delivery not queued", extra={"delivery_id": str(delivery_id), "error": str(exc)}
        )


def signed_headers(delivery: Delivery, body: str, secrets: list[str]) -> dict[str, str]:
    """Standard Webhooks headers: one `v1,` signature per live secret (two during a roll)."""
    sent_at = timezone.now()
    signatures = " ".join(
        Webhook(secret).sign(delivery.message_id, sent_at, body) for secret in secrets
    )
    return {
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signatures,
        "Content-Type": "application/json",
        "User-Agent": "NanoStudio-Webhooks/1",
    }


def _next_attempt_at(attempts: int, now: datetime) -> datetime | None:
    schedule = settings.WEBHOOK_RETRY_SCHEDULE_S
    if attempts > len(schedule):
        return None
    delay = schedule[attempts - 1]
    return now + timedelta(seconds=delay * random.uniform(0.8, 1.2))


def _claim(delivery_id: str) -> Delivery | None:
    """The delivery, if it is due and this call may send it (others skip it meanwhile)."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_S + 30)
    claimed = Delivery.objects.filter(
        pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=lease)
    if not claimed:
        return None
    return Delivery.objects.select_related("endpoint").get(pk=delivery_id)


def _in_flight_key(delivery: Delivery) -> str:
    return f"webhook-in-flight:{delivery.endpoint_id or delivery.url}"


def _take_place(delivery: Delivery) -> str | None:
    """One of the endpoint's WEBHOOK_IN_FLIGHT_PER_ENDPOINT places, or None if all are taken."""
    for place in range(settings.WEBHOOK_IN_FLIGHT_PER_ENDPOINT):
        key = f"{_in_flight_key(delivery)}:{place}"
        if cache.add(key, 1, IN_FLIGHT_TTL_S):
            return key
    return None


@shared_task(name="webhooks.deliver", acks_late=True, ignore_result=True)
def deliver(delivery_id: str) -> str:
    """Send a due delivery (one attempt); then, holding the endpoint's place, the endpoint's
    other due deliveries in turn (up to DRAIN_LIMIT). Safe to run twice: each attempt is
    claimed first. If all the endpoint's places are taken, the delivery is left due for
    their holders to send."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return "not due"
    place = _take_place(delivery)
    if place is None:
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        return "endpoint busy"
    try:
        outcome = _send(delivery)
        for _ in range(DRAIN_LIMIT):
            if delivery.endpoint_id is None or (delivery := _claim_next(delivery)) is None:
                break
            cache.touch(place, IN_FLIGHT_TTL_S)  # still held
            _send(delivery)
        return outcome
    finally:
        cache.delete(place)


def _claim_next(previous: Delivery) -> Delivery | None:
    """The same endpoint's next due delivery, claimed; None when there is none."""
    assert previous.endpoint_id is not None
    due = Delivery.objects.filter(
        endpoint_id=previous.endpoint_id,
        status=Delivery.Status.PENDING,
        next_attempt_at__lte=timezone.now(),
    ).order_by("next_attempt_at")
    for delivery_id in due.values_list("pk", flat=True)[:5]:
        if claimed := _claim(str(delivery_id)):
            return claimed
    return None


def _send(delivery: Delivery) -> str:
    endpoint = delivery.endpoint
    if endpoint is not None and not endpoint.enabled:
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.FAILED, next_attempt_at=None
        )
        return "endpoint disabled"
    return _attempt(delivery, endpoint)


def _attempt(delivery: Delivery, endpoint: Endpoint | None) -> str:
    body = json.dumps(delivery.as_sent(), separators=(",", ":"))
    secrets = endpoint.signing_secrets() if endpoint else [job_webhook_secret(delivery.user_id)]
    headers = signed_headers(delivery, body, secrets)
    started = timezone.now()
    try:
        answer = outbound.post(delivery.url, body.encode(), headers, settings.WEBHOOK_TIMEOUT_S)
    except outbound.UnsafeUrl as exc:  # its address changed to a refused one since it was set
        answer = outbound.Answer(None, "", 0, str(exc))
    number = delivery.attempts + 1
    ok = answer.status is not None and 200 <= answer.status < 300
    now = timezone.now()
    with transaction.atomic():
        Attempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=started,
            status_code=answer.status,
            latency_ms=answer.latency_ms,
            response_body=answer.body,
            error=answer.error[:200],
        )
        fields: dict[str, Any] = {"attempts": number, "last_status_code": answer.status}
        if ok:
            fields |= {"status": Delivery.Status.DELIVERED, "delivered_at": now}
            fields["next_attempt_at"] = None
        else:
            fields["next_attempt_at"] = _next_attempt_at(number, now)
            if fields["next_attempt_at"] is None:
                fields["status"] = Delivery.Status.FAILED
        Delivery.objects.filter(pk=delivery.pk).update(**fields)
        if endpoint is not None:
            _record_health(endpoint, ok, now)
    logger.info(
        "webhook attempt",
        extra={
            "delivery_id": str(delivery.pk),
            "event": delivery.event,
            "attempt": number,
            "status": answer.status,
            "latency_ms": answer.latency_ms,
        },
    )
    return "delivered" if ok else "failed"


def _record_health(endpoint: Endpoint, ok: bool, now: datetime) -> None:
    """Keep `failing_since`; disable an endpoint failing for WEBHOOK_DISABLE_AFTER_S."""
    from webhooks import notices

    if ok:
        Endpoint.objects.filter(pk=endpoint.pk).exclude(failing_since=None).update(
            failing_since=None
        )
        return
    Endpoint.objects.filter(pk=endpoint.pk, failing_since=None).update(failing_since=now)
    cutoff = now - timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_S)
    disabled = Endpoint.objects.filter(
        pk=endpoint.pk, enabled=True, failing_since__lte=cutoff
    ).update(enabled=False, disabled_reason="Every delivery failed for 3 days.")
    if disabled:
        transaction.on_commit(lambda: notices.endpoint_disabled(endpoint.pk), robust=True)


def job_webhook_secret(user_id: int) -> str:
    """The secret that signs a job's own `webhook` URL: the user's first endpoint's, or one
    kept for the purpose (GET /api/webhooks/job-secret shows it)."""
    return JobWebhookSecret.for_user(user_id)


@shared_task(name="webhooks.dispatch_due", ignore_result=True)
def dispatch_due() -> int:
    """Beat, every few seconds: queue the attempts that are due (retries, and first attempts
    whose message was lost)."""
    due = list(
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:DISPATCH_BATCH]
    )
    for delivery_id in due:
        send_soon(delivery_id)
    return len(due)


@shared_task(name="webhooks.purge_old", ignore_result=True)
def purge_old() -> int:
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_DELIVERY_RETENTION_DAYS)
    deleted, _ = Delivery.objects.filter(created_at__lt=cutoff).delete()
    return deleted
