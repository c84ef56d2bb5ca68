"""{% job_deliveries job as deliveries %}: a job's webhook deliveries, for the job page (the
studio app shows them without importing this one)."""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import QuerySet

from webhooks.models import Delivery

register = template.Library()


@register.simple_tag
def job_deliveries(job: Any) -> QuerySet[Delivery]:
    return Delivery.objects.filter(job_id=job.pk).select_related("endpoint").order_by("created_at")
