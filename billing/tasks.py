from __future__ import annotations

from celery import shared_task

from billing import ledger, usage


@shared_task(name="billing.grant_due_allowances", soft_time_limit=300, time_limit=360)
def grant_due_allowances() -> int:
    return ledger.grant_due_allowances()


@shared_task(name="billing.expire_topups", soft_time_limit=300, time_limit=360)
def expire_topups() -> int:
    return ledger.expire_topups()


@shared_task(name="billing.roll_up_usage", soft_time_limit=120, time_limit=150)
def roll_up_usage() -> int:
    return usage.roll_up()


@shared_task(name="billing.prune_usage_events", soft_time_limit=600, time_limit=660)
def prune_usage_events() -> int:
    return usage.prune_events()
