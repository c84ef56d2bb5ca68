from __future__ import annotations

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import accounts.models

# The models `billing` handed over (billing 0010): their tables already exist, with their
# data, so this changes Django's state only and copies nothing.


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("billing", "0010_usage_moves_to_its_own_app"),
        ("accounts", "0001_initial"),
        ("apikeys", "0002_disabled_by_key"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="UserUsage",
                    fields=[],
                    options={
                        "verbose_name": "usage by user",
                        "verbose_name_plural": "usage by user",
                        "proxy": True,
                        "indexes": [],
                        "constraints": [],
                    },
                    bases=("accounts.user",),
                    managers=[
                        ("objects", accounts.models.UserManager()),
                    ],
                ),
                migrations.CreateModel(
                    name="UsageEvent",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "endpoint",
                            models.CharField(
                                help_text='Method and route, "GET /api/jobs/{job_id}".',
                                max_length=80,
                            ),
                        ),
                        ("method", models.CharField(max_length=7)),
                        ("status", models.PositiveSmallIntegerField()),
                        ("error_code", models.CharField(blank=True, max_length=40)),
                        (
                            "credits",
                            models.IntegerField(default=0, help_text="Credits this request cost."),
                        ),
                        ("latency_ms", models.FloatField()),
                        ("ip", models.GenericIPAddressField(blank=True, null=True)),
                        ("request_id", models.CharField(max_length=64)),
                        ("job_id", models.UUIDField(blank=True, null=True)),
                        ("rolled_up", models.BooleanField(default=False)),
                        (
                            "key",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="apikeys.apikey",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "billing_usageevent",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [
                            models.Index(
                                fields=["user", "-created_at"], name="usage_event_user_recent"
                            ),
                            models.Index(
                                fields=["key", "-created_at"], name="usage_event_key_recent"
                            ),
                            models.Index(
                                condition=models.Q(("rolled_up", False)),
                                fields=["user"],
                                name="usage_event_pending",
                            ),
                            models.Index(
                                condition=models.Q(("credits__gt", 0)),
                                fields=["job_id"],
                                name="usage_event_charged_job",
                            ),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="UsageKeyRollup",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("day", models.DateField()),
                        (
                            "status_class",
                            models.PositiveSmallIntegerField(
                                help_text="2 for 2xx, 4 for 4xx, 5 for 5xx."
                            ),
                        ),
                        ("requests", models.PositiveIntegerField(default=0)),
                        ("credits", models.IntegerField(default=0)),
                        ("latency_ms_total", models.FloatField(default=0)),
                        (
                            "key",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="apikeys.apikey",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "billing_usagekeyrollup",
                        "ordering": ["-day"],
                        "abstract": False,
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("user", "day", "key", "status_class"),
                                name="usage_key_rollup_unique",
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="UsageRollup",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("day", models.DateField()),
                        (
                            "status_class",
                            models.PositiveSmallIntegerField(
                                help_text="2 for 2xx, 4 for 4xx, 5 for 5xx."
                            ),
                        ),
                        ("requests", models.PositiveIntegerField(default=0)),
                        ("credits", models.IntegerField(default=0)),
                        ("latency_ms_total", models.FloatField(default=0)),
                        ("endpoint", models.CharField(max_length=80)),
                        (
                            "key",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="apikeys.apikey",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "billing_usagerollup",
                        "ordering": ["-day"],
                        "abstract": False,
                        "indexes": [
                            models.Index(fields=["key"], name="usage_rollup_key"),
                            models.Index(
                                fields=["user", "day"],
                                include=(
                                    "key",
                                    "endpoint",
                                    "status_class",
                                    "requests",
                                    "credits",
                                    "latency_ms_total",
                                ),
                                name="usage_rollup_covering",
                            ),
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("user", "day", "key", "endpoint", "status_class"),
                                name="usage_rollup_unique",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
