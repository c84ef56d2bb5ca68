"""Usage metering moved from `billing` to `usage` with a state-only migration: the tables
keep their names and their rows; nothing is copied."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from usage.models import UsageEvent, UsageKeyRollup, UsageRollup

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("billing", "0009_usage_event_charged_job"), ("usage", None)]


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)


def test_the_move_keeps_every_row_and_table(alice_key):
    key, _ = alice_key
    executor = _migrate(BEFORE)
    old = executor.loader.project_state(BEFORE[0]).apps
    old_event = old.get_model("billing", "UsageEvent").objects.create(
        created_at=timezone.now(),
        user_id=key.user_id,
        key_id=key.pk,
        endpoint="GET /api/user/profile",
        method="GET",
        status=200,
        latency_ms=1.5,
        request_id="req_before_the_move",
        rolled_up=True,
    )
    old.get_model("billing", "UsageRollup").objects.create(
        day=timezone.now().date(),
        user_id=key.user_id,
        key_id=key.pk,
        endpoint="GET /api/user/profile",
        status_class=2,
        requests=7,
        credits=3,
    )
    old.get_model("billing", "UsageKeyRollup").objects.create(
        day=timezone.now().date(),
        user_id=key.user_id,
        key_id=key.pk,
        status_class=2,
        requests=7,
    )

    _migrate(executor.loader.graph.leaf_nodes())

    event = UsageEvent.objects.get(pk=old_event.pk)
    assert (event.request_id, event.status, event.key_id) == ("req_before_the_move", 200, key.pk)
    assert UsageRollup.objects.get(user_id=key.user_id).requests == 7
    assert UsageKeyRollup.objects.get(user_id=key.user_id).requests == 7
    assert UsageEvent._meta.db_table == "billing_usageevent"
    tables = connection.introspection.table_names()
    assert "usage_usageevent" not in tables and "billing_usagerollup" in tables


def test_the_covering_index_includes_its_columns_where_the_database_can(db):
    from django.core import checks
    from django.db import connection

    from usage.models import UsageRollup

    index = next(i for i in UsageRollup._meta.indexes if i.name == "usage_rollup_covering")
    with connection.schema_editor(collect_sql=True) as editor:
        sql = str(index.create_sql(UsageRollup, editor))
    if connection.vendor == "postgresql":
        assert 'INCLUDE ("key_id", "endpoint", "status_class", "requests"' in sql
    else:  # SQLite: a plain index, and no models.W040 warning on every command
        assert "INCLUDE" not in sql and '("user_id", "day")' in sql
    assert not [
        m for m in checks.run_checks(include_deployment_checks=False) if m.id == "models.W040"
    ]
