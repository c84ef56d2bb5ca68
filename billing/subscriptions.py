"""Starting and changing a user's plan."""

from __future__ import annotations

from django.utils import timezone

from billing.models import DEFAULT_PLAN_SLUG, Plan, Subscription


def start_default_plan(user) -> Subscription:
    """Give a newly verified user the Free plan; a no-op if they already have one."""
    plan = Plan.objects.get(slug=DEFAULT_PLAN_SLUG)
    subscription, _ = Subscription.objects.get_or_create(
        user=user, defaults={"plan": plan, "billing_anchor_day": timezone.now().day}
    )
    return subscription
