from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.db.models import Max, OuterRef, Q, Subquery, Sum
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin import UserAdmin
from billing import ledger, usage
from billing.models import (
    CreditBalance,
    LedgerEntry,
    Plan,
    Subscription,
    TopUp,
    UpgradeRequest,
    UsageKeyRollup,
    UsageRollup,
    UserUsage,
)  # fmt: skip

USAGE_SUMMARY_DAYS = 30


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that only our code writes: the admin may look, never add, edit or delete."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "name", "slug", "monthly_credits", "rate_per_minute", "burst", "max_api_keys",
        "max_concurrent_jobs", "price_cents", "is_public", "sort_order",
    ]  # fmt: skip
    list_editable = ["is_public", "sort_order"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["user", "plan", "billing_anchor_day", "started_at", "updated_at"]
    list_filter = ["plan"]
    search_fields = ["user__email"]
    list_select_related = ["user", "plan"]
    readonly_fields = ["user", "billing_anchor_day", "started_at", "updated_at"]
    fields = [
        "user",
        "plan",
        "billing_anchor_day",
        "provider",
        "provider_ref",
        "started_at",
        "updated_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False  # users get a subscription when they verify their email

    def save_model(self, request, obj: Subscription, form, change) -> None:
        if change and "plan" in form.changed_data:
            # Through the ledger, so the allowance changes with the plan (see change_plan).
            ledger.change_plan(obj.user, obj.plan, actor=request.user)
            Subscription.objects.filter(pk=obj.pk).update(
                provider=obj.provider, provider_ref=obj.provider_ref
            )
            self.message_user(
                request,
                f"{obj.user} is now on {obj.plan}; allowance reset to {obj.plan.monthly_credits or 'unlimited'}.",
            )
        else:
            super().save_model(request, obj, form, change)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "user", "kind", "amount", "units", "reason", "job", "actor"]
    list_filter = ["kind"]
    search_fields = ["user__email", "reason"]
    list_select_related = ["user", "actor", "job"]
    date_hierarchy = "created_at"

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        if hasattr(response, "context_data") and "cl" in response.context_data:
            queryset = response.context_data["cl"].queryset
            totals = queryset.values("kind").annotate(total=Sum("amount")).order_by("kind")
            response.context_data["ledger_totals"] = list(totals)
            response.context_data["ledger_sum"] = (
                queryset.aggregate(total=Sum("amount"))["total"] or 0
            )
        return response


@admin.register(CreditBalance)
class CreditBalanceAdmin(admin.ModelAdmin):
    list_display = ["user", "allowance", "topup", "period_start", "period_end"]
    search_fields = ["user__email"]
    readonly_fields = ["user", "allowance", "topup", "period_start", "period_end"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TopUp)
class TopUpAdmin(admin.ModelAdmin):
    list_display = [
        "user",
        "amount",
        "reason",
        "expires_at",
        "expired_at",
        "granted_by",
        "created_at",
    ]
    search_fields = ["user__email", "reason"]
    readonly_fields = [
        "user",
        "amount",
        "reason",
        "expires_at",
        "expired_at",
        "granted_by",
        "created_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False  # use the "Grant credits" action on users, which writes the ledger


@admin.register(UpgradeRequest)
class UpgradeRequestAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "plan", "status", "message"]
    list_filter = ["status", "plan"]
    list_editable = ["status"]
    search_fields = ["user__email"]


@admin.register(UsageRollup)
class UsageRollupAdmin(ReadOnlyAdmin):
    list_display = ["day", "user", "key", "endpoint", "status_class", "requests", "credits"]
    list_filter = ["status_class", "endpoint"]
    search_fields = ["user__email", "key__name"]
    list_select_related = ["user", "key"]
    date_hierarchy = "day"
    show_full_result_count = False


def _rollup_total(expression, **filters):
    """A per-user total over the last USAGE_SUMMARY_DAYS days of rollups, as a subquery."""
    since = usage.today() - timedelta(days=USAGE_SUMMARY_DAYS - 1)
    rows = UsageKeyRollup.objects.filter(user=OuterRef("pk"), day__gte=since, **filters)
    return Subquery(rows.values("user").annotate(total=expression).values("total"))


@admin.register(UserUsage)
class UserUsageAdmin(ReadOnlyAdmin):
    """Who is using what: each user's API requests, errors and credits over 30 days."""

    list_display = ["email", "plan", "requests", "errors", "credits", "last_day", "details"]
    search_fields = ["email"]
    list_select_related = ["subscription__plan"]
    list_filter = ["subscription__plan"]
    show_full_result_count = False

    def get_queryset(self, request):
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
    def plan(self, user) -> str:
        subscription = getattr(user, "subscription", None)
        return subscription.plan.name if subscription else "-"

    @admin.display(description=f"Requests ({USAGE_SUMMARY_DAYS} d)", ordering="requests_30d")
    def requests(self, user) -> int:
        return user.requests_30d or 0

    @admin.display(description="Errors", ordering="errors_30d")
    def errors(self, user) -> int:
        return user.errors_30d or 0

    @admin.display(description="Credits", ordering="credits_30d")
    def credits(self, user) -> int:
        return user.credits_30d or 0

    @admin.display(description="Last active (UTC day)", ordering="last_day")
    def last_day(self, user):
        return user.last_day

    @admin.display(description="By day, key and endpoint")
    def details(self, user) -> str:
        url = reverse("admin:billing_usagerollup_changelist") + f"?user__id__exact={user.pk}"
        return format_html('<a href="{}">Rollups</a>', url)


class GrantCreditsForm(forms.Form):
    amount = forms.IntegerField(min_value=1, max_value=1_000_000)
    reason = forms.CharField(max_length=200)
    expires_at = forms.DateTimeField(
        required=False, help_text="Leave empty for credits that never expire."
    )


@admin.action(description="Grant credits to selected users")
def grant_credits(modeladmin, request, queryset):
    form = GrantCreditsForm(request.POST if "apply" in request.POST else None)
    if form.is_valid():
        for user in queryset:
            ledger.grant_topup(
                user,
                form.cleaned_data["amount"],
                form.cleaned_data["reason"],
                actor=request.user,
                expires_at=form.cleaned_data["expires_at"],
            )
        modeladmin.message_user(
            request,
            f"Granted {form.cleaned_data['amount']} credits to {queryset.count()} user(s).",
            messages.SUCCESS,
        )
        return None
    return render(
        request,
        "admin/billing/grant_credits.html",
        {
            "form": form,
            "users": queryset,
            "title": "Grant credits",
            **modeladmin.admin_site.each_context(request),
        },
    )


UserAdmin.actions = [*UserAdmin.actions, grant_credits]
