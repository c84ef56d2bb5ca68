"""What the webhooks API and pages do, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from billing.models import plan_of
from nanostudio import outbound
from studio.actions import PLAN_LACKS_WEBHOOKS
from webhooks.delivery import send_soon
from webhooks.models import Delivery, Endpoint, new_secret

if TYPE_CHECKING:
    from accounts.models import User


class BadUrl(ValueError):
    pass


def plan_refusal(user: User) -> str | None:
    plan = plan_of(user)
    return None if plan is not None and plan.allows_webhooks() else PLAN_LACKS_WEBHOOKS


def check_endpoint_url(url: str) -> str:
    """The URL, trimmed, if webhooks may call it (nanostudio.outbound); BadUrl if not."""
    url = url.strip()
    try:
        outbound.check_url(url)
    except outbound.UnsafeUrl as exc:
        raise BadUrl(str(exc)) from None
    return url


def create_endpoint(
    user: User, *, url: str, description: str, events: list[str], enabled: bool
) -> tuple[Endpoint, str]:
    secret = new_secret()
    endpoint = Endpoint(
        user=user, url=url, description=description, events=sorted(set(events)), enabled=enabled
    )
    endpoint.set_secret(secret)
    endpoint.save()
    return endpoint, secret


def update_endpoint(endpoint: Endpoint, **changes: Any) -> None:
    if "events" in changes:
        changes["events"] = sorted(set(changes["events"]))
    if changes.get("enabled") and not endpoint.enabled:
        changes |= {"failing_since": None, "disabled_reason": ""}
    for name, value in changes.items():
        setattr(endpoint, name, value)
    endpoint.save()


def send_test(endpoint: Endpoint) -> Delivery:
    """A `webhook.test` delivery to this endpoint only, whatever events it subscribes to."""
    now = timezone.now()
    delivery = Delivery.objects.create(
        user_id=endpoint.user_id,
        endpoint=endpoint,
        url=endpoint.url,
        event="webhook.test",
        message_id=Delivery.new_message_id(),
        payload={"endpoint_id": str(endpoint.pk), "message": "A test event from Nano Studio."},
        next_attempt_at=now,
    )
    transaction.on_commit(lambda: send_soon(delivery.pk), robust=True)
    return delivery


def resend(delivery: Delivery) -> Delivery:
    """Send a delivery again now, with the same `webhook-id` (a receiver that already has it
    can tell); its attempts go on counting."""
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.PENDING, next_attempt_at=timezone.now()
    )
    delivery.refresh_from_db()
    transaction.on_commit(lambda: send_soon(delivery.pk), robust=True)
    return delivery
