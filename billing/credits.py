"""What a user has left to spend, as the API and pages show it."""

from __future__ import annotations

from billing.models import CreditBalance


def credit_summary(user) -> dict:
    subscription = getattr(user, "subscription", None)
    try:
        balance = user.credit_balance  # already loaded with an API key (one auth query)
    except CreditBalance.DoesNotExist:
        balance = None
    if subscription is None:
        return {"remaining": 0, "topup": 0, "monthly_allowance": 0, "resets_at": None}
    unlimited = subscription.plan.is_unlimited
    return {
        "remaining": None if unlimited else (balance.total if balance else 0),
        "topup": balance.topup if balance else 0,
        "monthly_allowance": subscription.plan.monthly_credits,
        "resets_at": balance.period_end if balance else None,
    }
