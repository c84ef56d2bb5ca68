"""Webhook endpoints, the deliveries made to them, and each delivery's attempts.

A delivery is one event for one URL, with one `webhook-id` for all its attempts (at least
once: a receiver deduplicates on it). Attempts are kept with what the receiver answered.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from webhooks import crypto

EVENTS = {
    "job.succeeded": "A job finished with a result.",
    "job.failed": "A job failed; its credits were refunded.",
    "job.cancelled": "A queued job was cancelled; its credits were refunded.",
    "credits.low": "80 % and 100 % of the period's allowance used (once each per period).",
    "credits.granted": "Credits were added to your account.",
    "key.expiring": "An API key expires in 14, 7 or 1 days.",
    "key.revoked": "An API key was revoked.",
}
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    import base64

    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class Endpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=1000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    # The signing secret, encrypted (webhooks.crypto); the previous one signs too until
    # previous_valid_until after a roll.
    secret_encrypted = models.TextField(editable=False)
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_valid_until = models.DateTimeField(null=True, blank=True, editable=False)
    # Since when every delivery has failed (None while it answers); disabled after 3 days.
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.url

    def set_secret(self, secret: str) -> None:
        self.secret_encrypted = crypto.encrypt(secret)

    @property
    def secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted)

    def signing_secrets(self) -> list[str]:
        """The current secret, and the previous one while its grace period lasts."""
        found = [self.secret]
        grace_until = self.previous_valid_until
        if self.previous_secret_encrypted and grace_until and grace_until > timezone.now():
            found.append(crypto.decrypt(self.previous_secret_encrypted))
        return found

    def roll(self, grace: timedelta) -> str:
        """A new secret, returned once; the old one also signs for `grace`."""
        secret = new_secret()
        if grace:
            self.previous_secret_encrypted = self.secret_encrypted
            self.previous_valid_until = timezone.now() + grace
        else:
            self.previous_secret_encrypted, self.previous_valid_until = "", None
        self.set_secret(secret)
        self.save()
        return secret


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # None for a job's own `webhook` URL.
    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries"
    )
    job = models.ForeignKey(
        "studio.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    url = models.URLField(max_length=1000)
    event = models.CharField(max_length=40)
    message_id = models.CharField(max_length=40, unique=True)  # `webhook-id`, on every attempt
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due",
                condition=Q(status="pending"),
            ),
            models.Index(fields=["endpoint", "-created_at"]),
            models.Index(fields=["job"]),
            models.Index(fields=["created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.url}"

    @staticmethod
    def new_message_id() -> str:
        return f"msg_{uuid.uuid4().hex}"

    def as_sent(self) -> dict[str, Any]:
        """The body every attempt sends (the same bytes each time)."""
        return {
            "type": self.event,
            "timestamp": self.created_at.isoformat().replace("+00:00", "Z"),
            "data": self.payload,
        }


class Attempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="tries")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField()
    response_body = models.CharField(max_length=1024, blank=True)  # the first 1 KB
    error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="attempt_number_unique")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Notice(models.Model):
    """That a once-only notice was sent (credits.low at 80 % in a period, key.expiring at 7
    days for a key…): inserting its unique key is what decides it is sent once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=120, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key


class NotificationSettings(models.Model):
    """Which notices also go by email."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_settings"
    )
    credits_low = models.BooleanField("Credits running low", default=True)
    key_expiring = models.BooleanField("An API key expires soon", default=True)
    endpoint_disabled = models.BooleanField("A webhook endpoint was disabled", default=True)

    def __str__(self) -> str:
        return f"notifications of {self.user_id}"


class JobWebhookSecret(models.Model):
    """The account's secret for jobs' own `webhook` URLs (as Replicate's default secret)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="job_webhook_secret"
    )
    secret_encrypted = models.TextField(editable=False)

    def __str__(self) -> str:
        return f"job webhook secret of {self.user_id}"

    @classmethod
    def for_user(cls, user_id: int) -> str:
        row, _ = cls.objects.get_or_create(
            user_id=user_id, defaults={"secret_encrypted": crypto.encrypt(new_secret())}
        )
        return crypto.decrypt(row.secret_encrypted)
