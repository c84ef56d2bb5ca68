"""{% user_job job_id user as job %}: one of the user's jobs by id, or None (the request
inspector shows the job a request created without the usage app importing this one)."""

from __future__ import annotations

from typing import Any

from django import template

from studio.models import Job

register = template.Library()


@register.simple_tag
def user_job(job_id: Any, user: Any) -> Job | None:
    if not job_id:
        return None
    return Job.objects.filter(pk=job_id, user=user).select_related("template").first()
