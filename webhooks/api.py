"""/api/webhooks: endpoints, their secrets and delivery logs (scope `webhooks:write`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from django.db import transaction
from django.shortcuts import get_object_or_404
from ninja import Router, Status
from pydantic import Field

from apikeys.api import Grace
from apikeys.auth import ApiKeyAuth
from apikeys.models import ROLL_GRACE_PERIODS, Scope
from nanostudio.errors import ApiError
from nanostudio.http import ApiRequest
from nanostudio.schemas import Body, Schema, envelope, errors, ok
from webhooks import service
from webhooks.models import EVENTS, Delivery, Endpoint

router = Router(tags=["webhooks"], auth=ApiKeyAuth(Scope.WEBHOOKS_WRITE))

# Built from the catalogue so the schema lists the values (see apikeys.api.ScopeName).
EventName = Literal[tuple(EVENTS)]  # type: ignore[valid-type]


class EndpointOut(Schema):
    id: str
    url: str
    description: str
    events: list[str]
    enabled: bool
    disabled_reason: str
    failing_since: datetime | None
    previous_secret_valid_until: datetime | None
    created_at: datetime


class EndpointWithSecretOut(Schema):
    endpoint: EndpointOut
    secret: str = Field(description="The signing secret (`whsec_…`). Shown once: store it now.")


class EndpointListOut(Schema):
    endpoints: list[EndpointOut]


class EndpointIn(Body):
    url: str = Field(max_length=1000, description="https only; public addresses only.")
    description: str = Field(default="", max_length=200)
    events: list[EventName] = Field(min_length=1)  # type: ignore[valid-type]
    enabled: bool = True


class EndpointPatch(Body):
    url: str | None = Field(
        default=None, max_length=1000, description="https only; public addresses only."
    )
    description: str | None = Field(default=None, max_length=200)
    events: list[EventName] | None = Field(default=None, min_length=1)  # type: ignore[valid-type]
    enabled: bool | None = None


class RollIn(Body):
    grace: Grace = Field(default="24h", description="How long the old secret also signs.")  # type: ignore[valid-type]


class AttemptOut(Schema):
    number: int
    started_at: datetime
    status_code: int | None
    latency_ms: int
    response_body: str
    error: str


class DeliveryOut(Schema):
    id: str
    webhook_id: str = Field(description="The `webhook-id` header of every attempt.")
    event: str
    url: str
    status: str
    attempts: list[AttemptOut]
    next_attempt_at: datetime | None
    job_id: str | None
    created_at: datetime


class DeliveryListOut(Schema):
    deliveries: list[DeliveryOut]


class SecretOut(Schema):
    secret: str


def endpoint_out(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": str(endpoint.pk),
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "previous_secret_valid_until": endpoint.previous_valid_until,
        "created_at": endpoint.created_at,
    }


def delivery_out(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": str(delivery.pk),
        "webhook_id": delivery.message_id,
        "event": delivery.event,
        "url": delivery.url,
        "status": delivery.status,
        "attempts": [
            {
                "number": a.number,
                "started_at": a.started_at,
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "response_body": a.response_body,
                "error": a.error,
            }
            for a in delivery.tries.all()
        ],
        "next_attempt_at": delivery.next_attempt_at,
        "job_id": str(delivery.job_id) if delivery.job_id else None,
        "created_at": delivery.created_at,
    }


def _allowed(request: ApiRequest) -> None:
    refusal = service.plan_refusal(request.user)
    if refusal:
        raise ApiError("INSUFFICIENT_PERMISSIONS", refusal, {"feature": "webhooks"})


def _endpoint(request: ApiRequest, endpoint_id: uuid.UUID) -> Endpoint:
    _allowed(request)
    return get_object_or_404(Endpoint, pk=endpoint_id, user=request.user)


def _checked(url: str) -> str:
    try:
        return service.check_endpoint_url(url)
    except service.BadUrl as exc:
        raise ApiError("VALIDATION_ERROR", str(exc), {"fields": {"url": str(exc)}}) from None


@router.get("", response={200: envelope(EndpointListOut), **errors(403)})
def list_endpoints(request: ApiRequest) -> dict[str, Any]:
    _allowed(request)
    endpoints = Endpoint.objects.filter(user=request.user)
    return ok({"endpoints": [endpoint_out(e) for e in endpoints]})


@router.post("", response={201: envelope(EndpointWithSecretOut), **errors(403)})
def create_endpoint(request: ApiRequest, payload: EndpointIn) -> Status[dict[str, Any]]:
    """Register an endpoint. Its signing secret is in this answer only."""
    _allowed(request)
    endpoint, secret = service.create_endpoint(
        request.user,
        url=_checked(payload.url),
        description=payload.description,
        events=list(payload.events),
        enabled=payload.enabled,
    )
    return Status(201, ok({"endpoint": endpoint_out(endpoint), "secret": secret}))


@router.get("/job-secret", response={200: envelope(SecretOut), **errors(403)})
def job_secret(request: ApiRequest) -> dict[str, Any]:
    """The secret that signs the deliveries to a job's own `webhook` URL."""
    from webhooks.delivery import job_webhook_secret

    _allowed(request)
    return ok({"secret": job_webhook_secret(request.user.pk)})


@router.get("/{uuid:endpoint_id}", response={200: envelope(EndpointOut), **errors(403, 404)})
def get_endpoint(request: ApiRequest, endpoint_id: uuid.UUID) -> dict[str, Any]:
    return ok(endpoint_out(_endpoint(request, endpoint_id)))


@router.patch("/{uuid:endpoint_id}", response={200: envelope(EndpointOut), **errors(403, 404)})
def update_endpoint(
    request: ApiRequest, endpoint_id: uuid.UUID, payload: EndpointPatch
) -> dict[str, Any]:
    """Change the URL, description, events or enabled (re-enabling clears the failure)."""
    endpoint = _endpoint(request, endpoint_id)
    changes = payload.model_dump(exclude_unset=True)
    if "url" in changes:
        changes["url"] = _checked(changes["url"])
    service.update_endpoint(endpoint, **changes)
    return ok(endpoint_out(endpoint))


@router.delete("/{uuid:endpoint_id}", response={204: None, **errors(403, 404)})
def delete_endpoint(request: ApiRequest, endpoint_id: uuid.UUID) -> Status[None]:
    _endpoint(request, endpoint_id).delete()
    return Status(204, None)


@router.post(
    "/{uuid:endpoint_id}/roll-secret",
    response={200: envelope(EndpointWithSecretOut), **errors(403, 404)},
)
def roll_secret(request: ApiRequest, endpoint_id: uuid.UUID, payload: RollIn) -> dict[str, Any]:
    """A new signing secret (shown once); the old one also signs for `grace`."""
    endpoint = _endpoint(request, endpoint_id)
    secret = endpoint.roll(ROLL_GRACE_PERIODS[payload.grace])
    return ok({"endpoint": endpoint_out(endpoint), "secret": secret})


@router.post("/{uuid:endpoint_id}/test", response={202: envelope(DeliveryOut), **errors(403, 404)})
def send_test(request: ApiRequest, endpoint_id: uuid.UUID) -> Status[dict[str, Any]]:
    """Send a `webhook.test` event to this endpoint now; follow it in its deliveries."""
    endpoint = _endpoint(request, endpoint_id)
    with transaction.atomic():
        delivery = service.send_test(endpoint)
    return Status(202, ok(delivery_out(delivery)))


@router.get(
    "/{uuid:endpoint_id}/deliveries",
    response={200: envelope(DeliveryListOut), **errors(403, 404)},
)
def list_deliveries(request: ApiRequest, endpoint_id: uuid.UUID) -> dict[str, Any]:
    """The endpoint's last 100 deliveries (kept 30 days), newest first, with every attempt."""
    endpoint = _endpoint(request, endpoint_id)
    deliveries = endpoint.deliveries.prefetch_related("tries")[:100]
    return ok({"deliveries": [delivery_out(d) for d in deliveries]})


@router.post(
    "/{uuid:endpoint_id}/deliveries/{uuid:delivery_id}/resend",
    response={202: envelope(DeliveryOut), **errors(403, 404)},
)
def resend(
    request: ApiRequest, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> Status[dict[str, Any]]:
    """Send the same event again, as a new delivery with its own `webhook-id`."""
    endpoint = _endpoint(request, endpoint_id)
    original = get_object_or_404(Delivery, pk=delivery_id, endpoint=endpoint)
    with transaction.atomic():
        delivery = service.resend(original)
    return Status(202, ok(delivery_out(delivery)))
