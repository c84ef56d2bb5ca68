"""Usage metering's records: one event per /api call, and the daily rollups charts read.

The tables keep the names they had in `billing` (the models moved with a state-only
migration): `billing_usageevent`, `billing_usagerollup`, `billing_usagekeyrollup`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.backends.ddl_references import Statement
from django.utils import timezone

from accounts.models import User


class CoveringIndex(models.Index):
    """An index that also carries `covering` columns (INCLUDE) where the database supports it,
    PostgreSQL, and is a plain index elsewhere. `Index(include=…)` does the same on SQLite but
    makes Django warn (models.W040) on every command of the embedded mode."""

    def __init__(self, *args: Any, covering: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.covering = tuple(covering)

    def create_sql(
        self,
        model: type[models.Model],
        schema_editor: BaseDatabaseSchemaEditor,
        using: str = "",
        **kwargs: Any,
    ) -> Statement:
        index = copy.copy(self)
        if schema_editor.connection.features.supports_covering_indexes:
            index.include = self.covering
        return models.Index.create_sql(index, model, schema_editor, using, **kwargs)

    def deconstruct(self) -> Any:
        path, args, kwargs = super().deconstruct()
        kwargs["covering"] = self.covering
        return path, args, kwargs


class UsageEvent(models.Model):
    """One /api request made with a key (success or error). Kept USAGE_RETENTION_DAYS.

    `usage.metering.roll_up` folds them into the rollups and sets `rolled_up`, in the same
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
    path = models.CharField(
        max_length=200, blank=True, db_default="", help_text="The path and query string as called."
    )
    status = models.PositiveSmallIntegerField()
    error_code = models.CharField(max_length=40, blank=True)
    credits = models.IntegerField(default=0, help_text="Credits this request cost.")
    latency_ms = models.FloatField()
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64)
    # A plain id, not a foreign key: jobs and events have their own retention.
    job_id = models.UUIDField(null=True, blank=True)
    rolled_up = models.BooleanField(default=False)
    # What the request inspector shows beyond the log line.
    previous_secret = models.BooleanField(
        db_default=False, help_text="Made with a rolled key's old secret, during its grace period."
    )
    rate_remaining = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests left in the rate-limit burst after the call."
    )
    rate_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="The rate (per minute) that applied to the call."
    )
    server_timing = models.CharField(
        max_length=200,
        blank=True,
        db_default="",
        help_text="The Server-Timing header the answer carried.",
    )

    class Meta:
        db_table = "billing_usageevent"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="usage_event_user_recent"),
            models.Index(fields=["key", "-created_at"], name="usage_event_key_recent"),
            # Small: only the events of the last minute or so are waiting to be rolled up.
            models.Index(
                fields=["user"], condition=models.Q(rolled_up=False), name="usage_event_pending"
            ),
            # The request log's filters (usage.requestlog), each an index that yields a
            # user's matching rows newest first, so a page reads about its own rows.
            models.Index(
                fields=["user", "endpoint", "-created_at"], name="usage_event_user_endpoint"
            ),
            models.Index(fields=["user", "ip", "-created_at"], name="usage_event_user_ip"),
            # Small: errors only (about 7 % of the requests).
            models.Index(
                fields=["user", "-created_at"],
                condition=models.Q(status__gte=400),
                name="usage_event_user_errors",
            ),
            models.Index(
                fields=["key", "-created_at"],
                condition=models.Q(status__gte=400),
                name="usage_event_key_errors",
            ),
            models.Index(
                fields=["user", "error_code", "-created_at"],
                condition=~models.Q(error_code=""),
                name="usage_event_user_error_code",
            ),
            models.Index(fields=["request_id"], name="usage_event_request_id"),
            # The requests that created or read a job (the inspector, a search by job id, and
            # the charge found again on a refund).
            models.Index(
                fields=["job_id"],
                condition=models.Q(job_id__isnull=False),
                name="usage_event_job",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.status}"


class StreamMark(models.Model):
    """How far the usage events' Redis stream has been moved to PostgreSQL: the last moved
    entry's id, written in the same transaction as the events it moved (usage.metering), so a
    mover that stops between its commit and the stream's trim moves nothing twice."""

    stream = models.CharField(max_length=64, primary_key=True)
    last_id = models.CharField(max_length=41, default="0-0", help_text="A Redis stream entry id.")

    def __str__(self) -> str:
        return f"{self.stream} moved through {self.last_id}"


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
        db_table = "billing_usagerollup"
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
            CoveringIndex(
                fields=["user", "day"],
                covering=[
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
        db_table = "billing_usagekeyrollup"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "day", "key", "status_class"], name="usage_key_rollup_unique"
            )
        ]
        indexes = [
            # As UsageRollup's: a heavy user's 90 days, over a thousand rows, from the index
            # alone (PostgreSQL) rather than a heap page each.
            CoveringIndex(
                fields=["user", "day"],
                covering=["key", "status_class", "requests", "credits", "latency_ms_total"],
                name="usage_key_rollup_covering",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} key {self.key_id} {self.status_class}xx: {self.requests}"


class UserUsage(User):
    """Users seen through their API usage, for the admin's "who is using what" list."""

    class Meta:
        proxy = True
        verbose_name = "usage by user"
        verbose_name_plural = "usage by user"
