"""Beat must be one process; if a second one runs by mistake, each periodic task still does
its work once: two roll-ups at once count every event once, two sweeps at once send each
lost job once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from conftest import usage_events
from studio.models import Job
from usage import metering
from usage.models import UsageEvent, UsageRollup

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _twice_at_once(task):
    """Run `task` in two threads released together; their results, in thread order."""
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = task()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_roll_ups_at_once_count_every_event_once(alice, mint):
    key, _ = mint(alice)
    UsageEvent.objects.bulk_create(
        UsageEvent(
            user=alice,
            key=key,
            endpoint="GET /api/jobs",
            method="GET",
            status=200,
            latency_ms=1.0,
            request_id=f"req_beat{n:05d}",
        )
        for n in range(3000)
    )
    folded = _twice_at_once(lambda: metering.roll_up(batch_size=200))
    assert sum(folded) == 3000 and all(folded)  # both worked, on different events
    assert UsageRollup.objects.aggregate(total=Sum("requests"))["total"] == 3000
    assert not usage_events().filter(rolled_up=False).exists()


def test_two_sweeps_at_once_send_each_lost_job_once(alice):
    old = timezone.now() - timedelta(minutes=5)
    jobs = [Job.objects.create(user=alice, kind="generate", params={}) for _ in range(40)]
    Job.objects.filter(pk__in=[job.pk for job in jobs]).update(created_at=old)
    taken = _twice_at_once(lambda: [job.pk for job in Job.objects.take_lost(100)])
    first, second = (set(ids) for ids in taken)
    assert not first & second
    assert first | second == {job.pk for job in jobs}
    assert not Job.objects.take_lost(100)  # each was stamped as sent
