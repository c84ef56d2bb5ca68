"""Per-key credit budgets: a cap on what one key may spend per period (day, week, calendar
month or billing period, UTC), so a leaked key cannot drain the month.

Spending is one conditional statement, as the account's debit is (billing.ledger): an upsert
whose WHERE clause is the cap, so concurrent submits can never take a key past it. A refund
gives the credits back to the period they were taken from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import F
from django.utils import timezone

from apikeys.models import ApiKey, BudgetPeriod, KeySpend
from billing.periods import current_period, day_start


class BudgetExceeded(Exception):
    def __init__(self, cap: int, spent: int, resets_at: datetime) -> None:
        super().__init__(f"budget of {cap} spent ({spent})")
        self.cap, self.spent, self.resets_at = cap, spent, resets_at


@dataclass(frozen=True)
class Status:
    cap: int
    spent: int
    resets_at: datetime


def period_bounds(key: ApiKey, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The [start, end) of the key's current budget period."""
    now = now or timezone.now()
    today = day_start(now.date())
    if key.budget_period == BudgetPeriod.DAY:
        return today, today + timedelta(days=1)
    if key.budget_period == BudgetPeriod.WEEK:
        monday = today - timedelta(days=today.weekday())
        return monday, monday + timedelta(days=7)
    if key.budget_period == BudgetPeriod.BILLING:
        subscription = getattr(key.user, "subscription", None)
        if subscription is not None:
            return current_period(subscription.billing_anchor_day, now)
    return current_period(1, now)  # the calendar month


def status(key: ApiKey, now: datetime | None = None) -> Status | None:
    """The key's cap, what it spent this period and when that resets; None without a cap."""
    if key.budget_credits is None:
        return None
    start, end = period_bounds(key, now)
    spent = (
        KeySpend.objects.filter(key=key, period_start=start).values_list("spent", flat=True).first()
    )
    return Status(key.budget_credits, spent or 0, end)


def charge(key: ApiKey | None, cost: int) -> datetime | None:
    """Take `cost` from the key's budget for this period; the period's start (for a refund),
    or None when the key has no budget. BudgetExceeded, with nothing taken, past the cap."""
    if key is None or key.budget_credits is None:
        return None
    start, end = period_bounds(key)
    cap = key.budget_credits
    table = KeySpend._meta.db_table
    sql = (
        f"INSERT INTO {table} (key_id, period_start, spent) VALUES (%s, %s, %s) "  # noqa: S608
        f"ON CONFLICT (key_id, period_start) DO UPDATE SET spent = {table}.spent + excluded.spent "
        f"WHERE {table}.spent + excluded.spent <= %s RETURNING spent"
    )
    row = None
    if cost <= cap:
        with connection.cursor() as cursor:
            stored_start = connection.ops.adapt_datetimefield_value(start)  # as the ORM stores it
            cursor.execute(sql, [key.pk, stored_start, cost, cap])
            row = cursor.fetchone()
    if row is None:
        spent = status(key)
        raise BudgetExceeded(cap, spent.spent if spent else 0, end)
    return start


def give_back(key_id: int, period_start: datetime, cost: int) -> None:
    """A refunded job's credits, back to the budget period they came from."""
    KeySpend.objects.filter(key_id=key_id, period_start=period_start, spent__gte=cost).update(
        spent=F("spent") - cost
    )
