"""Random sequences of every ledger operation keep the invariants."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from django.db.models import Count, Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import ledger
from billing.ledger import InsufficientCredits
from billing.models import CreditBalance, LedgerEntry
from conftest import make_user
from studio.models import Job

operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(1, 30)),
        st.tuples(st.just("refund"), st.integers(0, 20)),
        st.tuples(st.just("topup"), st.integers(1, 40), st.booleans()),
        st.tuples(st.just("reset"), st.integers(1, 3)),
        st.tuples(st.just("expire"), st.integers(1, 40)),
        st.tuples(st.just("adjust"), st.integers(-60, 60)),
    ),
    max_size=25,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=operations)
def test_ledger_invariants(db, steps):
    user = make_user(f"prop{timezone.now().timestamp()}@example.com")
    jobs: list[Job] = []
    clock = timezone.now()
    for step in steps:
        match step:
            case ("reserve", cost):
                job = Job.objects.create(user=user, kind="generate", credits=cost)
                jobs.append(job)
                with contextlib.suppress(InsufficientCredits):
                    ledger.reserve(user, cost, job)
            case ("refund", index):
                if jobs:
                    ledger.refund(jobs[index % len(jobs)], "test refund")
            case ("topup", amount, expiring):
                ledger.grant_topup(
                    user, amount, "test", expires_at=clock + timedelta(days=1) if expiring else None
                )
            case ("reset", months):
                clock += timedelta(days=31 * months)
                ledger.grant_monthly(user, clock)
            case ("expire", days):
                clock += timedelta(days=days)
                ledger.expire_topups(clock)
            case ("adjust", amount):
                with contextlib.suppress(InsufficientCredits):
                    ledger.adjust(user, amount, "test")
        balance = CreditBalance.objects.get(user=user)
        assert balance.allowance >= 0 and balance.topup >= 0
        total = LedgerEntry.objects.filter(user=user).aggregate(total=Sum("amount"))["total"]
        assert balance.total == total
    per_job = (
        LedgerEntry.objects.filter(user=user, job__isnull=False)
        .values("job", "kind")
        .annotate(n=Count("pk"))
    )
    assert all(row["n"] == 1 for row in per_job)
