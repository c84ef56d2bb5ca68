"""Starting and changing a user's plan."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from billing.models import DEFAULT_PLAN_SLUG, Plan, Subscription

if TYPE_CHECKING:
    from accounts.models import User


def start_default_plan(user: User) -> Subscription:
    """Give a newly verified user the Free plan and its first allowance; a no-op if they
    already have a plan. Their billing day is today's day of the month."""
    from billing.ledger import open_account

    plan = Plan.objects.get(slug=DEFAULT_PLAN_SLUG)
    with transaction.atomic():
        subscription, created = Subscription.objects.get_or_create(
            user=user, defaults={"plan": plan, "billing_anchor_day": timezone.now().day}
        )
        if created:
            open_account(user)
    return subscription
