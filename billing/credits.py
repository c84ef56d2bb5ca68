"""What a user has left to spend, as the API and pages show it."""

from __future__ import annotations

from billing.models import CreditBalance, plan_of


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
