"""Real concurrent connections on PostgreSQL: the conditional UPDATE and the unique grant."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum

from billing import ledger
from billing.ledger import InsufficientCredits
from billing.models import CreditBalance, LedgerEntry
from studio.models import Job

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _in_thread(function):
    def run(*args):
        try:
            return function(*args)
        finally:
            connection.close()  # each thread has its own real connection

    return run


def test_200_concurrent_reservations_against_50_credits(alice):
    jobs = Job.objects.bulk_create([Job(user=alice, kind="generate") for _ in range(200)])

    @_in_thread
    def reserve(job):
        try:
            ledger.reserve(alice, 1, job)
            return "ok"
        except InsufficientCredits:
            return "insufficient"

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(reserve, jobs))

    assert outcomes.count("ok") == 50
    assert outcomes.count("insufficient") == 150
    row = CreditBalance.objects.get(user=alice)
    assert (row.allowance, row.topup) == (0, 0)
    total = LedgerEntry.objects.filter(user=alice).aggregate(total=Sum("amount"))["total"]
    assert total == 0
    assert LedgerEntry.objects.filter(user=alice, kind="debit").count() == 50


def test_two_concurrent_resets_grant_once(alice):
    next_period = CreditBalance.objects.get(user=alice).period_end + timedelta(hours=1)
    barrier = threading.Barrier(2)

    @_in_thread
    def reset(_):
        barrier.wait()
        return ledger.grant_monthly(alice, next_period) is not None

    with ThreadPoolExecutor(max_workers=2) as pool:
        granted = list(pool.map(reset, range(2)))

    assert sorted(granted) == [False, True]
    grants = LedgerEntry.objects.filter(user=alice, kind="grant", period_start__isnull=False)
    assert grants.count() == 2  # the first period's and exactly one for the next
    total = LedgerEntry.objects.filter(user=alice).aggregate(total=Sum("amount"))["total"]
    assert total == CreditBalance.objects.get(user=alice).total == 50
