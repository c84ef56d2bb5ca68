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
