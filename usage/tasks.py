from __future__ import annotations

from celery import shared_task

from usage import metering


@shared_task(name="usage.roll_up", soft_time_limit=120, time_limit=150)
def roll_up() -> int:
    return metering.roll_up()


@shared_task(name="usage.prune_events", soft_time_limit=600, time_limit=660)
def prune_events() -> int:
    return metering.prune_events()
