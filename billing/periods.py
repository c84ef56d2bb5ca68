"""Billing periods: the monthly allowance renews on the subscription's anchor day (UTC)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime
from datetime import time as dt_time

from django.utils import timezone


def _anchor_in(year: int, month: int, anchor_day: int) -> datetime:
    # An anchor on the 31st renews on the last day of shorter months.
    day = min(anchor_day, calendar.monthrange(year, month)[1])
    return datetime(year, month, day, tzinfo=UTC)


def _shift(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def current_period(anchor_day: int, now: datetime) -> tuple[datetime, datetime]:
    """The [start, end) of the billing period that contains `now`."""
    start = _anchor_in(now.year, now.month, anchor_day)
    if start > now:
        start = _anchor_in(*_shift(now.year, now.month, -1), anchor_day)
    end = _anchor_in(*_shift(start.year, start.month, 1), anchor_day)
    return start, end


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of `day`: the days of charts and usage are UTC days."""
    return datetime.combine(day, dt_time.min, tzinfo=UTC)


def utc_today() -> date:
    return timezone.now().astimezone(UTC).date()
