from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db.models import Sum
from django.utils import timezone

from billing import ledger
from billing.ledger import InsufficientCredits
from billing.models import CreditBalance, LedgerEntry, Plan
from conftest import make_user
from studio.models import Job


def balance(user) -> tuple[int, int]:
    row = CreditBalance.objects.get(user=user)
    return row.allowance, row.topup


def ledger_sum(user) -> int:
    return LedgerEntry.objects.filter(user=user).aggregate(total=Sum("amount"))["total"] or 0


def job_for(user, credits: int = 1) -> Job:
    return Job.objects.create(user=user, kind="generate", credits=credits)


def test_a_new_user_gets_the_free_allowance(alice):
    assert balance(alice) == (50, 0)
    grant = LedgerEntry.objects.get(user=alice)
    assert (grant.kind, grant.amount, grant.reason) == ("grant", 50, "Free monthly allowance")
    assert grant.period_start is not None


def test_reserve_and_refund(alice):
    job = job_for(alice, 3)
    charge = ledger.reserve(alice, 3, job)
    assert (charge.amount, charge.remaining) == (3, 47)
    assert balance(alice) == (47, 0)
    assert ledger.refund(job, "Job failed") is True
    assert ledger.refund(job, "Job failed") is False  # at most once
    assert balance(alice) == (50, 0)
    assert ledger_sum(alice) == 50
    kinds = list(LedgerEntry.objects.filter(job=job).order_by("pk").values_list("kind", "amount"))
    assert kinds == [("debit", -3), ("refund", 3)]


def test_a_job_is_charged_at_most_once(alice):
    job = job_for(alice)
    ledger.reserve(alice, 1, job)
    with pytest.raises(Exception):  # the unique constraint; the second UPDATE is rolled back
        ledger.reserve(alice, 1, job)
    assert balance(alice) == (49, 0)
    assert ledger_sum(alice) == 49


def test_insufficient_credits_changes_nothing(charlie):
    job = job_for(charlie, 2)
    with pytest.raises(InsufficientCredits) as error:
        ledger.reserve(charlie, 2, job)
    assert (error.value.required, error.value.remaining) == (2, 0)
    assert error.value.resets_at == CreditBalance.objects.get(user=charlie).period_end
    assert balance(charlie) == (0, 0)
    assert not LedgerEntry.objects.filter(job=job).exists()


def test_topups_are_spent_after_the_allowance(alice):
    ledger.grant_topup(alice, 10, "Goodwill")
    assert balance(alice) == (50, 10)
    ledger.reserve(alice, 48, job_for(alice, 48))
    assert balance(alice) == (2, 10)
    ledger.reserve(alice, 5, job_for(alice, 5))
    assert balance(alice) == (0, 7)
    assert ledger_sum(alice) == 7


def test_an_expired_topup_takes_only_what_is_left_of_it(alice):
    now = timezone.now()
    ledger.grant_topup(alice, 10, "Soon", expires_at=now + timedelta(days=1))
    ledger.grant_topup(alice, 20, "Later", expires_at=now + timedelta(days=30))
    ledger.reserve(alice, 54, job_for(alice, 54))  # 50 allowance + 4 of "Soon"
    assert balance(alice) == (0, 26)
    assert ledger.expire_topups(now + timedelta(days=2)) == 1
    assert ledger.expire_topups(now + timedelta(days=2)) == 0  # idempotent
    assert balance(alice) == (0, 20)
    assert ledger_sum(alice) == 20


def test_the_monthly_grant_is_idempotent_and_does_not_roll_over(alice):
    sub = alice.subscription
    assert ledger.grant_monthly(alice) is None  # this period is granted already
    ledger.reserve(alice, 10, job_for(alice, 10))
    next_period = CreditBalance.objects.get(user=alice).period_end + timedelta(hours=1)
    assert ledger.grant_monthly(alice, next_period) is not None
    assert ledger.grant_monthly(alice, next_period) is None
    assert balance(alice) == (50, 0)
    expire = LedgerEntry.objects.filter(user=alice, kind="expire").get()
    assert expire.amount == -40
    assert ledger_sum(alice) == 50
    assert sub.billing_anchor_day == timezone.now().day


def test_reserve_grants_a_new_period_that_beat_has_not_reached(charlie):
    later = CreditBalance.objects.get(user=charlie).period_end + timedelta(minutes=5)
    with time_machine.travel(later):
        charge = ledger.reserve(charlie, 1, job_for(charlie))
    assert charge.remaining == 49


def test_unlimited_plans_are_never_blocked_but_recorded(db):
    user = make_user("ent@example.com", plan="enterprise")
    job = job_for(user, 7)
    charge = ledger.reserve(user, 7, job)
    assert (charge.amount, charge.remaining) == (0, None)
    debit = LedgerEntry.objects.get(job=job)
    assert (debit.kind, debit.amount, debit.units) == ("debit", 0, 7)
    assert ledger_sum(user) == sum(balance(user))


def test_changing_plan_resets_the_allowance(alice):
    ledger.reserve(alice, 20, job_for(alice, 20))
    ledger.change_plan(alice, Plan.objects.get(slug="pro"))
    alice.refresh_from_db()
    assert alice.subscription.plan.slug == "pro"
    assert balance(alice) == (500, 0)
    assert ledger_sum(alice) == 500


def test_negative_adjustment_cannot_go_below_zero(alice):
    with pytest.raises(InsufficientCredits):
        ledger.adjust(alice, -51, "Too much")
    assert balance(alice) == (50, 0)
    ledger.adjust(alice, -50, "Correction")
    ledger.adjust(alice, 5, "Goodwill")
    assert balance(alice) == (0, 5)
    assert ledger_sum(alice) == 5


def test_grant_due_allowances_for_everyone_once(alice, bob):
    later = datetime.now(UTC) + timedelta(days=32)
    assert ledger.grant_due_allowances(later) == 2
    assert ledger.grant_due_allowances(later) == 0
    assert balance(alice) == (50, 0)
