"""What a user has left to spend, as the API and pages show it."""

from __future__ import annotations

import math
from datetime import UTC, date, timedelta

from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from billing.models import CreditBalance, LedgerEntry, plan_of


def credit_summary(user) -> dict:
    plan = plan_of(user)
    try:
        balance = user.credit_balance  # already loaded with an API key (one auth query)
    except CreditBalance.DoesNotExist:
        balance = None
    if plan is None:
        return {"remaining": 0, "topup": 0, "monthly_allowance": 0, "resets_at": None}
    unlimited = plan.is_unlimited
    return {
        "remaining": None if unlimited else (balance.total if balance else 0),
        "topup": balance.topup if balance else 0,
        "monthly_allowance": plan.monthly_credits,
        "resets_at": balance.period_end if balance else None,
    }


def credits_left_by_day(user, days: list[date]) -> list[int | None]:
    """Credits left (allowance + top-ups) at the end of each of `days`, for the days of the
    current billing period up to today; None for the others. From the balance and the ledger:
    each day's figure is today's balance minus every movement after that day."""
    from billing.usage import day_start, today

    try:
        balance = user.credit_balance
    except CreditBalance.DoesNotExist:
        return [None] * len(days)
    if balance.period_start is None or not days:
        return [None] * len(days)
    period_first = balance.period_start.astimezone(UTC).date()
    since = max(balance.period_start, day_start(days[0]))
    moved = dict(
        LedgerEntry.objects.filter(user=user, created_at__gte=since)
        .values_list(TruncDate("created_at", tzinfo=UTC))
        .annotate(total=Sum("amount"))
        .order_by()
    )
    after = sum(total for day, total in moved.items() if day > days[-1])
    left, current = [], today()
    for day in reversed(days):
        if day > current or day < period_first:
            left.append(None)
            continue
        left.append(balance.total - after)
        after += moved.get(day, 0)
    return list(reversed(left))


def run_out_forecast(user, left: int | None, *, window_days: int = 7) -> dict | None:
    """When the credits run out at the average spend of the last `window_days` days."""
    from billing.usage import today

    plan = plan_of(user)
    if plan is None or plan.is_unlimited or left is None:
        return None
    since = timezone.now() - timedelta(days=window_days)
    spent = -(
        LedgerEntry.objects.filter(
            user=user,
            created_at__gte=since,
            kind__in=[LedgerEntry.Kind.DEBIT, LedgerEntry.Kind.REFUND],
        ).aggregate(total=Sum("amount"))["total"]
        or 0
    )
    per_day = spent / window_days
    resets_at = getattr(getattr(user, "credit_balance", None), "period_end", None)
    forecast = {"per_day": round(per_day, 1), "resets_at": resets_at, "run_out": None}
    if left <= 0:
        forecast["run_out"] = today()
    elif per_day > 0:
        forecast["run_out"] = today() + timedelta(days=math.ceil(left / per_day))
    forecast["before_reset"] = bool(
        forecast["run_out"] and resets_at and forecast["run_out"] < resets_at.date()
    )
    return forecast
