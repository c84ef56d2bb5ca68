"""Usage in the admin: read-only rollups, and who is using what."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Aggregate, Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from billing.admin import ReadOnlyAdmin
from billing.periods import utc_today
from usage.models import UsageKeyRollup, UsageRollup, UserUsage

USAGE_SUMMARY_DAYS = 30


@admin.register(UsageRollup)
class UsageRollupAdmin(ReadOnlyAdmin[UsageRollup]):
    list_display = ["day", "user", "key", "endpoint", "status_class", "requests", "credits"]
    list_filter = ["status_class", "endpoint"]
    search_fields = ["user__email", "key__name"]
    list_select_related = ["user", "key"]
    date_hierarchy = "day"
    show_full_result_count = False


def _rollup_total(expression: Aggregate, **filters: object) -> Subquery:
    """A per-user total over the last USAGE_SUMMARY_DAYS days of rollups, as a subquery."""
    since = utc_today() - timedelta(days=USAGE_SUMMARY_DAYS - 1)
    rows = UsageKeyRollup.objects.filter(user=OuterRef("pk"), day__gte=since, **filters)
    return Subquery(rows.values("user").annotate(total=expression).values("total"))


@admin.register(UserUsage)
class UserUsageAdmin(ReadOnlyAdmin[UserUsage]):
    """Who is using what: each user's API requests, errors and credits over 30 days."""

    list_display = ["email", "plan", "requests", "errors", "credits", "last_day", "details"]
    search_fields = ["email"]
    list_select_related = ["subscription__plan"]
    list_filter = ["subscription__plan"]
    show_full_result_count = False
    # The display methods take Any: their rows carry the annotations made here, which mypy's
    # Django plugin does not follow through a Subquery.

    def get_queryset(self, request: HttpRequest) -> QuerySet[UserUsage]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                requests_30d=_rollup_total(Sum("requests")),
                errors_30d=_rollup_total(Sum("requests"), status_class__gte=4),
                credits_30d=_rollup_total(Sum("credits")),
                last_day=_rollup_total(Max("day")),
            )
            .filter(Q(requests_30d__gt=0))
            .order_by("-requests_30d", "email")
        )

    @admin.display(description="Plan")
    def plan(self, user: Any) -> str:
        subscription = getattr(user, "subscription", None)
        return subscription.plan.name if subscription else "-"

    @admin.display(description=f"Requests ({USAGE_SUMMARY_DAYS} d)", ordering="requests_30d")
    def requests(self, user: Any) -> int:
        return user.requests_30d or 0

    @admin.display(description="Errors", ordering="errors_30d")
    def errors(self, user: Any) -> int:
        return user.errors_30d or 0

    @admin.display(description="Credits", ordering="credits_30d")
    def credits(self, user: Any) -> int:
        return user.credits_30d or 0

    @admin.display(description="Last active (UTC day)", ordering="last_day")
    def last_day(self, user: Any) -> date | None:
        day: date | None = user.last_day
        return day

    @admin.display(description="By day, key and endpoint")
    def details(self, user: Any) -> str:
        url = reverse("admin:usage_usagerollup_changelist") + f"?user__id__exact={user.pk}"
        return format_html('<a href="{}">Rollups</a>', url)
