from __future__ import annotations

from django.db import migrations

# Usage metering moved to the `usage` app. Its tables stay where they are (they keep their
# names, see usage.models); only Django's idea of which app owns them changes.


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0009_usage_event_charged_job"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="usageevent",
                    name="key",
                ),
                migrations.RemoveField(
                    model_name="usageevent",
                    name="user",
                ),
                migrations.RemoveField(
                    model_name="usagekeyrollup",
                    name="key",
                ),
                migrations.RemoveField(
                    model_name="usagekeyrollup",
                    name="user",
                ),
                migrations.RemoveField(
                    model_name="usagerollup",
                    name="key",
                ),
                migrations.RemoveField(
                    model_name="usagerollup",
                    name="user",
                ),
                migrations.DeleteModel(
                    name="UserUsage",
                ),
                migrations.DeleteModel(
                    name="UsageEvent",
                ),
                migrations.DeleteModel(
                    name="UsageKeyRollup",
                ),
                migrations.DeleteModel(
                    name="UsageRollup",
                ),
            ],
            database_operations=[],
        ),
    ]
