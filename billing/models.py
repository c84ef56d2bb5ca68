from __future__ import annotations

from django.conf import settings
from django.db import models

DEFAULT_PLAN_SLUG = "free"


def default_features() -> dict:
    return {"job_kinds": ["generate", "ocr"], "template_types": [], "webhooks": False}


class PlanQuerySet(models.QuerySet["Plan"]):
    def public(self) -> PlanQuerySet:
        return self.filter(is_public=True).order_by("sort_order", "pk")


class Plan(models.Model):
    """What a subscription allows. Admin-editable; changes apply on the next request."""

    name = models.CharField(max_length=50)
    slug = models.SlugField(unique=True)
    description = models.CharField(max_length=200, blank=True)
    monthly_credits = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty means unlimited."
    )
    rate_per_minute = models.PositiveIntegerField(default=10)
    burst = models.PositiveIntegerField(default=15)
    max_api_keys = models.PositiveIntegerField(default=5)
    max_concurrent_jobs = models.PositiveIntegerField(default=2)
    features = models.JSONField(
        default=default_features,
        blank=True,
        help_text=(
            'Allowed "job_kinds" (generate, ocr), "template_types" (empty list = all) '
            'and "webhooks" (true/false).'
        ),
    )
    price_cents = models.PositiveIntegerField(
        null=True, blank=True, help_text="Monthly price in cents; empty means 'contact us'."
    )
    is_public = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    objects = PlanQuerySet.as_manager()

    class Meta:
        ordering = ["sort_order", "pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_unlimited(self) -> bool:
        return self.monthly_credits is None

    def allows_job_kind(self, kind: str) -> bool:
        return kind in self.features.get("job_kinds", [])

    def allows_template_type(self, template_type: str) -> bool:
        allowed = self.features.get("template_types") or []
        return not allowed or template_type in allowed


class Subscription(models.Model):
    """A user's one current plan. `billing_anchor_day` is the day of the month it renews."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscription"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    billing_anchor_day = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Where a payment provider is added later, its customer/subscription ids live here.
    provider = models.CharField(max_length=30, blank=True)
    provider_ref = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(billing_anchor_day__gte=1, billing_anchor_day__lte=31),
                name="subscription_anchor_day_valid",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.plan}"
