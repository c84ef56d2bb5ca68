from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import User

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

    def allows_template_type(self, template_type: str) -> bool:
        allowed = self.features.get("template_types") or []
        return not allowed or template_type in allowed


def plan_of(user) -> Plan | None:
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


class UsageEvent(models.Model):
    """One /api request made with a key (success or error). Kept USAGE_RETENTION_DAYS.

    `billing.usage.roll_up` folds them into the rollups and sets `rolled_up`, in the same
    transaction, so each event is counted exactly once; charts read the rollups plus the few
    events not rolled up yet.
    """

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    key = models.ForeignKey(
        "apikeys.ApiKey", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    endpoint = models.CharField(
        max_length=80, help_text='Method and route, "GET /api/jobs/{job_id}".'
    )
    method = models.CharField(max_length=7)
    status = models.PositiveSmallIntegerField()
    error_code = models.CharField(max_length=40, blank=True)
    credits = models.IntegerField(default=0, help_text="Credits this request cost.")
    latency_ms = models.FloatField()
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64)
    # A plain id, not a foreign key: jobs and events have their own retention.
    job_id = models.UUIDField(null=True, blank=True)
    rolled_up = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="usage_event_user_recent"),
            models.Index(fields=["key", "-created_at"], name="usage_event_key_recent"),
            # Small: only the events of the last minute or so are waiting to be rolled up.
            models.Index(
                fields=["user"], condition=models.Q(rolled_up=False), name="usage_event_pending"
            ),
            # Tiny: only the requests that were charged for a job (found again on a refund).
            models.Index(
                fields=["job_id"], condition=models.Q(credits__gt=0), name="usage_event_charged_job"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.status}"


class Rollup(models.Model):
    """What both rollup tables count for a UTC day, a user and a status class."""

    day = models.DateField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    status_class = models.PositiveSmallIntegerField(help_text="2 for 2xx, 4 for 4xx, 5 for 5xx.")
    requests = models.PositiveIntegerField(default=0)
    credits = models.IntegerField(default=0)
    latency_ms_total = models.FloatField(default=0)

    class Meta:
        abstract = True
        ordering = ["-day"]


class UsageRollup(Rollup):
    """Requests and credits per UTC day x user x key x endpoint x status class. Kept forever."""

    key = models.ForeignKey(
        "apikeys.ApiKey", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    endpoint = models.CharField(max_length=80)

    class Meta(Rollup.Meta):
        constraints = [
            # Serves every chart query too: a user's rows for a range of days.
            models.UniqueConstraint(
                fields=["user", "day", "key", "endpoint", "status_class"],
                name="usage_rollup_unique",
            )
        ]
        indexes = [
            models.Index(fields=["key"], name="usage_rollup_key"),
            # Charts read a user's days from the index alone (PostgreSQL; elsewhere it is a
            # plain index): a heavy user's 90 days are thousands of rows.
            models.Index(
                fields=["user", "day"],
                include=[
                    "key",
                    "endpoint",
                    "status_class",
                    "requests",
                    "credits",
                    "latency_ms_total",
                ],
                name="usage_rollup_covering",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.endpoint} {self.status_class}xx: {self.requests}"


class UsageKeyRollup(Rollup):
    """The same as UsageRollup without the endpoint: per UTC day x user x key x status class.

    Folded in the same transaction as UsageRollup; the unfiltered charts, the dashboard and
    `/api/usage?group_by=key` read these, a few rows per key and day whatever the traffic.
    """

    key = models.ForeignKey("apikeys.ApiKey", on_delete=models.CASCADE, related_name="+")

    class Meta(Rollup.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["user", "day", "key", "status_class"], name="usage_key_rollup_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} key {self.key_id} {self.status_class}xx: {self.requests}"


class UserUsage(User):
    """Users seen through their API usage, for the admin's "who is using what" list."""

    class Meta:
        proxy = True
        verbose_name = "usage by user"
        verbose_name_plural = "usage by user"
