from __future__ import annotations

from celery import shared_task

from billing import ledger


@shared_task(name="billing.grant_due_allowances", soft_time_limit=300, time_limit=360)
def grant_due_allowances() -> int:
    return ledger.grant_due_allowances()


@shared_task(name="billing.expire_topups", soft_time_limit=300, time_limit=360)
def expire_topups() -> int:
    return ledger.expire_topups()
