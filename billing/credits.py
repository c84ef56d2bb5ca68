"""What a user has left to spend."""

from __future__ import annotations

from django.utils import timezone

from billing.periods import current_period


def credit_summary(user) -> dict:
    subscription = getattr(user, "subscription", None)
    if subscription is None:
        return {"remaining": 0, "monthly_allowance": 0, "resets_at": None}
    _, resets_at = current_period(subscription.billing_anchor_day, timezone.now())
    allowance = subscription.plan.monthly_credits
    return {"remaining": allowance, "monthly_allowance": allowance, "resets_at": resets_at}
