"""Tell PostgreSQL's planner that a key belongs to one user: without these statistics it
multiplies `user_id = U` and `key_id = K` as if independent, expects a tenth of the rows a
key has, and picks a bitmap-and-sort plan for "this key's 5xx" that read 14,000 rows (20 ms)
instead of walking the key's errors newest first."""

from __future__ import annotations

from django.db import migrations

CREATE = (
    "CREATE STATISTICS IF NOT EXISTS usage_event_key_user (dependencies) "
    "ON key_id, user_id FROM billing_usageevent"
)
DROP = "DROP STATISTICS IF EXISTS usage_event_key_user"


def _on_postgresql(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("usage", "0003_request_log")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
