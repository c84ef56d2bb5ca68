"""What a user has left to spend, as the API and pages show it."""

from __future__ import annotations

from billing.models import CreditBalance


def credit_summary(user) -> dict:
    subscription = getattr(user, "subscription", None)
    balance = CreditBalance.objects.filter(user=user).first()
    if subscription is None:
        return {"remaining": 0, "monthly_allowance": 0, "resets_at": None}
    unlimited = subscription.plan.is_unlimited
    return {
        "remaining": None if unlimited else (balance.total if balance else 0),
        "monthly_allowance": subscription.plan.monthly_credits,
        "resets_at": balance.period_end if balance else None,
    }
