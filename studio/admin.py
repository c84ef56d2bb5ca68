from __future__ import annotations

from functools import partial

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from studio.actions import refund_job
from studio.models import Job, Template


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin[Template]):
    list_display = ["name", "type", "engine", "model", "credit_cost", "enabled", "sort_order"]
    list_filter = ["type", "engine", "enabled"]
    list_editable = ["credit_cost", "enabled", "sort_order"]
    search_fields = ["name", "description"]
    filter_horizontal = ["plans"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin[Job]):
    list_display = [
        "created_at",
        "user",
        "kind",
        "template",
        "status",
        "credits",
        "attempts",
        "error_code",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["user__email", "id"]
    list_select_related = ["user", "template"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Job._meta.fields]
    actions = ["retry", "refund"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry selected failed jobs (not charged again)")
    def retry(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        from studio.tasks import enqueue

        retried = 0
        for job in queryset.filter(status=Job.Status.FAILED):
            with transaction.atomic():
                # A retry is a new run of the same job: it is not charged again (its one
                # debit was refunded when it failed), which favours the customer.
                if not Job.objects.requeue_failed(job.pk):
                    continue
                transaction.on_commit(partial(enqueue, job))
            retried += 1
        self.message_user(
            request, f"Re-queued {retried} job(s). Retries are not charged again.", messages.SUCCESS
        )

    @admin.action(description="Refund selected jobs")
    def refund(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        refunded = sum(refund_job(job, f"Refunded by {request.user}") for job in queryset)
        self.message_user(
            request,
            f"Refunded {refunded} job(s); the others had nothing to refund.",
            messages.SUCCESS,
        )
