from __future__ import annotations

from django.conf import settings
from django.db import migrations

import usage.models


class Migration(migrations.Migration):
    """The covering index becomes a CoveringIndex: the same index in the database (INCLUDE on
    PostgreSQL, plain on SQLite), so only the migration state changes."""

    dependencies = [
        ("apikeys", "0002_disabled_by_key"),
        ("usage", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="usagerollup", name="usage_rollup_covering"),
                migrations.AddIndex(
                    model_name="usagerollup",
                    index=usage.models.CoveringIndex(
                        covering=(
                            "key",
                            "endpoint",
                            "status_class",
                            "requests",
                            "credits",
                            "latency_ms_total",
                        ),
                        fields=["user", "day"],
                        name="usage_rollup_covering",
                    ),
                ),
            ]
        )
    ]
