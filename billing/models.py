from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models

if TYPE_CHECKING:
    from accounts.models import User

DEFAULT_PLAN_SLUG = "free"


def default_features() -> dict[str, Any]:
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
    def price_label(self) -> str:
        if self.price_cents is None:
            return "Contact us"
        if self.price_cents == 0:
            return "Free"
        dollars = self.price_cents / 100
        return f"${dollars:,.0f}/mo" if self.price_cents % 100 == 0 else f"${dollars:,.2f}/mo"

    @property
    def is_unlimited(self) -> bool:
        return self.monthly_credits is None

    def allows_job_kind(self, kind: str) -> bool:
        return kind in self.features.get("job_kinds", [])

    def allows_webhooks(self) -> bool:
        return bool(self.features.get("webhooks"))

    def allows_template_type(self, template_type: str) -> bool:
        allowed = self.features.get("template_types") or []
        return not allowed or template_type in allowed


def plan_of(user: User) -> Plan | None:
    """The user's current plan, or None before their email is verified."""
    subscription = getattr(user, "subscription", None)
    return subscription.plan if subscription else None


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


class CreditBalance(models.Model):
    """What a user can spend: the monthly allowance first, then top-ups.

    Always equal to the sum of the user's ledger entries; changed only together with an entry,
    by conditional updates in billing.ledger.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credit_balance"
    )
    allowance = models.IntegerField(default=0, help_text="Left of this period's allowance.")
    topup = models.IntegerField(default=0, help_text="Left of granted top-ups.")
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(allowance__gte=0), name="balance_allowance_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(topup__gte=0), name="balance_topup_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.total}"

    @property
    def total(self) -> int:
        return self.allowance + self.topup


class LedgerEntry(models.Model):
    """Append-only record of every credit movement. `amount` is signed."""

    class Kind(models.TextChoices):
        GRANT = "grant", "Grant"
        DEBIT = "debit", "Debit"
        REFUND = "refund", "Refund"
        EXPIRE = "expire", "Expire"
        ADJUST = "adjust", "Adjust"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ledger"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.IntegerField(help_text="Change to the balance; negative for debits.")
    # Nominal credits of a debit/refund; differs from -amount only on unlimited plans (0 there).
    units = models.IntegerField(default=0)
    reason = models.CharField(max_length=200)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    job = models.ForeignKey(
        "studio.Job",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="ledger_entries",
    )
    # Set on monthly allowance grants only: at most one per user and period.
    period_start = models.DateTimeField(null=True, blank=True)
    topup = models.ForeignKey(
        "TopUp", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["user", "-created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "period_start"],
                condition=models.Q(kind="grant", period_start__isnull=False),
                name="ledger_one_monthly_grant_per_period",
            ),
            models.UniqueConstraint(
                fields=["job"], condition=models.Q(kind="debit"), name="ledger_one_debit_per_job"
            ),
            models.UniqueConstraint(
                fields=["job"], condition=models.Q(kind="refund"), name="ledger_one_refund_per_job"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d} ({self.reason})"


class TopUp(models.Model):
    """Credits granted by an admin, spent after the allowance, optionally expiring."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="topups"
    )
    amount = models.PositiveIntegerField()
    reason = models.CharField(max_length=200)
    expires_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True, editable=False)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.amount} credits for {self.user}"


class UpgradeRequest(models.Model):
    """A user asking for another plan. Without a payment provider an admin acts on it."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        DECLINED = "declined", "Declined"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="+")
    message = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(status="open"), name="one_open_upgrade_request"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.plan}"
