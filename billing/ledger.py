"""Credits: grants, reservations, refunds, expiry. The only code that changes a balance.

Invariants (tested with hypothesis): a balance is never negative (CHECK constraints), always
equals the sum of the user's ledger entries, and a job has at most one debit and one refund
(unique constraints). Spending is one conditional UPDATE, never read-then-write, and its
ledger entry is written only if it took the credits (in the same statement on PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from audit.models import record
from billing.models import CreditBalance, LedgerEntry, Plan, Subscription, TopUp, plan_of
from billing.periods import current_period
from billing.signals import credits_granted, credits_spent
from nanostudio import inserts, metrics

if TYPE_CHECKING:
    from accounts.models import User
    from studio.models import Job


LOW_CREDITS_PERCENT = 80  # credits_spent is sent once this much of the allowance is used


class InsufficientCredits(Exception):
    def __init__(self, required: int, remaining: int, resets_at: datetime | None) -> None:
        super().__init__(f"{required} credits required, {remaining} left")
        self.required = required
        self.remaining = remaining
        self.resets_at = resets_at


@dataclass
class Charge:
    """What reserve() did: credits taken (0 on unlimited plans) and what is left (None = ∞)."""

    amount: int
    remaining: int | None


def _spend(debit: LedgerEntry) -> tuple[int, int] | None:
    """Take the debit's credits from the allowance first, then top-ups, if the total covers
    them, and write the debit.

    One conditional UPDATE, whose WHERE clause is the balance check, so concurrent spenders
    can never take the balance below zero; the debit row is written only if it took the
    credits, in the same statement on PostgreSQL (`inserts.after`). Returns the new total and
    allowance, or None if the balance did not cover the debit (nothing written).
    """
    table = CreditBalance._meta.db_table
    cost = -debit.amount
    from_allowance = "CASE WHEN allowance >= %s THEN %s ELSE allowance END"
    sql = (
        f"UPDATE {table} SET allowance = allowance - {from_allowance}, "  # noqa: S608
        f"topup = topup - (%s - {from_allowance}) "
        "WHERE user_id = %s AND allowance + topup >= %s RETURNING allowance + topup, allowance"
    )
    row = inserts.after(sql, [cost, cost, cost, cost, cost, debit.user_id, cost], debit)
    return None if row is None else (row[0], row[1])


def balance_of(user: User) -> CreditBalance:
    balance, _ = CreditBalance.objects.get_or_create(user=user)
    return balance


def open_account(user: User) -> None:
    """A new subscriber's balance and first allowance (their period starts today)."""
    CreditBalance.objects.get_or_create(user=user)
    grant_monthly(user)


def grant_monthly(user: User, now: datetime | None = None) -> LedgerEntry | None:
    """Grant the current period's allowance; None if it was already granted.

    Idempotent across processes: the unique (user, period_start) constraint on grants admits
    one; a concurrent second attempt waits for the first to commit and then fails to insert.
    The previous period's unspent allowance expires (it does not roll over).
    """
    subscription = Subscription.objects.select_related("plan").get(user=user)
    start, end = current_period(subscription.billing_anchor_day, now or timezone.now())
    amount = subscription.plan.monthly_credits or 0
    with transaction.atomic():
        try:
            with transaction.atomic():
                entry = LedgerEntry.objects.create(
                    user=user,
                    kind=LedgerEntry.Kind.GRANT,
                    amount=amount,
                    reason=f"{subscription.plan.name} monthly allowance",
                    period_start=start,
                )
        except IntegrityError:
            return None
        _replace_allowance(user, amount, "Unspent allowance does not roll over", start, end)
    return entry


def _replace_allowance(
    user: User,
    amount: int,
    expire_reason: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> None:
    """Expire what is left of the allowance and set a new one (inside a transaction)."""
    balance, _ = CreditBalance.objects.get_or_create(user=user)
    balance = CreditBalance.objects.select_for_update().get(pk=balance.pk)
    if balance.allowance:
        LedgerEntry.objects.create(
            user=user, kind=LedgerEntry.Kind.EXPIRE, amount=-balance.allowance, reason=expire_reason
        )
    fields: dict[str, object] = {"allowance": amount}
    if start is not None:
        fields.update(period_start=start, period_end=end)
    CreditBalance.objects.filter(pk=balance.pk).update(**fields)


def reserve(user: User, cost: int, job: Job, *, savepoint: bool = True) -> Charge:
    """Charge a job when it is accepted. Raises InsufficientCredits; at most once per job.
    `savepoint=False`: the caller's transaction is rolled back whole on a refusal, so it
    needs no savepoint to go on after one (two round trips fewer)."""
    plan = plan_of(user)
    with transaction.atomic(savepoint=savepoint):
        if plan is not None and plan.is_unlimited:
            # Never blocked, but the usage is still on the record.
            inserts.insert(
                LedgerEntry(
                    user=user,
                    kind=LedgerEntry.Kind.DEBIT,
                    amount=0,
                    units=cost,
                    job=job,
                    reason=f"{job.kind} job (unlimited plan)",
                )
            )
            return Charge(amount=0, remaining=None)
        debit = LedgerEntry(
            user=user,
            kind=LedgerEntry.Kind.DEBIT,
            amount=-cost,
            units=cost,
            job=job,
            reason=f"{job.kind} job",
        )
        spent = _spend(debit)
        if spent is None and plan is not None and grant_monthly(user):
            spent = _spend(debit)  # a new period had begun before beat granted it
        if spent is None:
            balance = balance_of(user)
            raise InsufficientCredits(cost, balance.total, balance.period_end)
        remaining, allowance_left = spent
        metrics.after_commit(lambda: metrics.CREDITS_DEBITED.inc(cost))
        monthly = plan.monthly_credits if plan is not None else None
        if monthly and allowance_left * 100 <= monthly * (100 - LOW_CREDITS_PERCENT):
            # 80 % or more of the allowance used: listeners decide (once per period) what to
            # say. Below that, nothing to say and no query spent on it.
            credits_spent.send(
                sender=CreditBalance, user_id=user.pk, allowance=monthly, left=allowance_left
            )
    return Charge(amount=cost, remaining=remaining)


def refund(job: Job, reason: str) -> bool:
    """Give a job's credits back (to the current allowance). True if this call refunded."""
    with transaction.atomic():
        debit = LedgerEntry.objects.filter(job=job, kind=LedgerEntry.Kind.DEBIT).first()
        if debit is None:
            return False
        try:
            with transaction.atomic():
                LedgerEntry.objects.create(
                    user_id=debit.user_id,
                    kind=LedgerEntry.Kind.REFUND,
                    amount=-debit.amount,
                    units=debit.units,
                    job=job,
                    reason=reason,
                )
        except IntegrityError:
            return False  # already refunded
        if debit.amount:
            CreditBalance.objects.filter(user_id=debit.user_id).update(
                allowance=F("allowance") - debit.amount
            )
    return True


def grant_topup(
    user: User,
    amount: int,
    reason: str,
    actor: User | None = None,
    expires_at: datetime | None = None,
) -> TopUp:
    """Admin credits on top of the allowance; spent after it, optionally expiring."""
    if amount <= 0:
        raise ValueError("A top-up must be positive")
    with transaction.atomic():
        balance_of(user)
        topup = TopUp.objects.create(
            user=user, amount=amount, reason=reason, expires_at=expires_at, granted_by=actor
        )
        LedgerEntry.objects.create(
            user=user,
            kind=LedgerEntry.Kind.GRANT,
            amount=amount,
            reason=reason,
            actor=actor,
            topup=topup,
        )
        CreditBalance.objects.filter(user=user).update(topup=F("topup") + amount)
        record(user.pk, "credits.granted", f"{amount} credits", reason=reason)
        credits_granted.send(sender=TopUp, user_id=user.pk, amount=amount, reason=reason)
    return topup


def expire_topups(now: datetime | None = None) -> int:
    """Expire what is left of top-ups past their date. Returns how many expired."""
    now = now or timezone.now()
    done = 0
    for topup in TopUp.objects.filter(expires_at__lte=now, expired_at__isnull=True).order_by(
        "expires_at"
    ):
        with transaction.atomic():
            # Claim it: a concurrent run skips it.
            if not TopUp.objects.filter(pk=topup.pk, expired_at__isnull=True).update(
                expired_at=now
            ):
                continue
            balance = CreditBalance.objects.select_for_update().get(user_id=topup.user_id)
            # Top-ups are spent soonest-expiring first, so the ones still alive are whole:
            # whatever the top-up balance holds beyond them is what is left of this one.
            alive = (
                TopUp.objects.filter(user_id=topup.user_id, expired_at__isnull=True).aggregate(
                    total=Sum("amount")
                )["total"]
                or 0
            )
            left = max(0, min(topup.amount, balance.topup - alive))
            if left:
                LedgerEntry.objects.create(
                    user_id=topup.user_id,
                    kind=LedgerEntry.Kind.EXPIRE,
                    amount=-left,
                    reason=f"Top-up expired: {topup.reason}",
                    topup=topup,
                )
                CreditBalance.objects.filter(pk=balance.pk).update(topup=F("topup") - left)
            done += 1
    return done


def adjust(user: User, amount: int, reason: str, actor: User | None = None) -> None:
    """An admin correction: positive adds to top-ups, negative spends like a debit."""
    with transaction.atomic():
        balance_of(user)
        entry = LedgerEntry(
            user=user, kind=LedgerEntry.Kind.ADJUST, amount=amount, reason=reason, actor=actor
        )
        if amount >= 0:
            CreditBalance.objects.filter(user=user).update(topup=F("topup") + amount)
            entry.save()
        elif _spend(entry) is None:
            balance = balance_of(user)
            raise InsufficientCredits(-amount, balance.total, balance.period_end)


def change_plan(user: User, plan: Plan, actor: User | None = None) -> None:
    """Move a user to `plan` now. The allowance is reset to the new plan's full amount for
    the rest of the current period (not prorated); the billing day stays the same."""
    with transaction.atomic():
        # From the table: the caller's Subscription object may already hold the new plan.
        previous = (
            Subscription.objects.filter(user=user).values_list("plan_id", "plan__name").first()
        )
        Subscription.objects.filter(user=user).update(plan=plan, updated_at=timezone.now())
        if previous is not None and previous[0] != plan.pk:
            record(user.pk, "plan.changed", plan.name, previous=previous[1])
        amount = plan.monthly_credits or 0
        _replace_allowance(user, amount, f"Plan changed to {plan.name}")
        LedgerEntry.objects.create(
            user=user,
            kind=LedgerEntry.Kind.GRANT,
            amount=amount,
            actor=actor,
            reason=f"{plan.name} allowance (plan change)",
        )


def grant_due_allowances(now: datetime | None = None) -> int:
    """Beat: grant every subscriber whose new period has begun. Safe to run any number of
    times, in any number of processes."""
    granted = 0
    now = now or timezone.now()
    for subscription in Subscription.objects.select_related("user").iterator():
        start, _ = current_period(subscription.billing_anchor_day, now)
        balance = CreditBalance.objects.filter(user_id=subscription.user_id).first()
        if balance is not None and balance.period_start == start:
            continue  # fast path; the unique constraint is what guarantees one grant
        if grant_monthly(subscription.user, now):
            granted += 1
    return granted
