"""What a user has left to spend, as the API and pages show it."""

from __future__ import annotations

import math
from datetime import UTC, date, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import Sum
from django.db.models.functions import TruncDate

from billing.models import CreditBalance, LedgerEntry, plan_of
from billing.periods import day_start, utc_today

if TYPE_CHECKING:
    from accounts.models import User


def credit_summary(user: User) -> dict[str, Any]:
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


FORECAST_WINDOW_DAYS = 7


def burn_down(user: User, days: list[date]) -> tuple[list[int | None], dict[str, Any] | None]:
    """Credits left (allowance + top-ups) at the end of each of `days` that falls in the current
    billing period up to today (None for the others), and a forecast of when they run out at
    the spend of the last FORECAST_WINDOW_DAYS days. One ledger query: each day's figure is
    today's balance minus every movement after that day."""
    nothing: list[int | None] = [None] * len(days)
    plan = plan_of(user)
    balance = getattr(user, "credit_balance", None) if plan and not plan.is_unlimited else None
    if balance is None or balance.period_start is None or not days:
        return nothing, None
    current = utc_today()
    window_first = current - timedelta(days=FORECAST_WINDOW_DAYS - 1)
    since = min(max(balance.period_start, day_start(days[0])), day_start(window_first))
    moved: dict[date, int] = {}
    spent = 0
    for day, kind, total in (
        LedgerEntry.objects.filter(user=user, created_at__gte=since)
        .values_list(TruncDate("created_at", tzinfo=UTC), "kind")
        .annotate(total=Sum("amount"))
        .order_by()
    ):
        moved[day] = moved.get(day, 0) + total
        if day >= window_first and kind in (LedgerEntry.Kind.DEBIT, LedgerEntry.Kind.REFUND):
            spent -= total
    period_first = balance.period_start.astimezone(UTC).date()
    after = sum(total for day, total in moved.items() if day > days[-1])
    left: list[int | None] = []
    for day in reversed(days):
        if day > current or day < period_first:
            left.append(None)
            continue
        left.append(balance.total - after)
        after += moved.get(day, 0)
    per_day = spent / FORECAST_WINDOW_DAYS
    forecast = {"per_day": round(per_day, 1), "resets_at": balance.period_end, "run_out": None}
    if balance.total <= 0:
        forecast["run_out"] = current
    elif per_day > 0:
        forecast["run_out"] = current + timedelta(days=math.ceil(balance.total / per_day))
    forecast["before_reset"] = bool(
        forecast["run_out"]
        and balance.period_end
        and forecast["run_out"] < balance.period_end.astimezone(UTC).date()
    )
    return list(reversed(left)), forecast
