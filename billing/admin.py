from __future__ import annotations

from typing import TypeVar

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.response import TemplateResponse

from accounts.admin import UserAdmin, admin_user
from accounts.models import User
from billing import ledger
from billing.models import CreditBalance, LedgerEntry, Plan, Subscription, TopUp, UpgradeRequest

M = TypeVar("M", bound=Model)


class ReadOnlyAdmin(admin.ModelAdmin[M]):
    """Records that only our code writes: the admin may look, never add, edit or delete."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin[Plan]):
    list_display = [
        "name",
        "slug",
        "monthly_credits",
        "rate_per_minute",
        "burst",
        "max_api_keys",
        "max_concurrent_jobs",
        "price_cents",
        "is_public",
        "sort_order",
    ]
    list_editable = ["is_public", "sort_order"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin[Subscription]):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # users get a subscription when they verify their email

    def save_model(
        self,
        request: HttpRequest,
        obj: Subscription,
        form: forms.ModelForm[Subscription],
        change: bool,
    ) -> None:
        if change and "plan" in form.changed_data:
            # Through the ledger, so the allowance changes with the plan (see change_plan).
            ledger.change_plan(obj.user, obj.plan, actor=admin_user(request))
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
class LedgerEntryAdmin(ReadOnlyAdmin[LedgerEntry]):
    list_display = ["created_at", "user", "kind", "amount", "units", "reason", "job", "actor"]
    list_filter = ["kind"]
    search_fields = ["user__email", "reason"]
    list_select_related = ["user", "actor", "job"]
    date_hierarchy = "created_at"

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, object] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        if isinstance(response, TemplateResponse) and "cl" in (response.context_data or {}):
            assert response.context_data is not None
            queryset = response.context_data["cl"].queryset
            totals = queryset.values("kind").annotate(total=Sum("amount")).order_by("kind")
            response.context_data["ledger_totals"] = list(totals)
            response.context_data["ledger_sum"] = (
                queryset.aggregate(total=Sum("amount"))["total"] or 0
            )
        return response


@admin.register(CreditBalance)
class CreditBalanceAdmin(admin.ModelAdmin[CreditBalance]):
    list_display = ["user", "allowance", "topup", "period_start", "period_end"]
    search_fields = ["user__email"]
    readonly_fields = ["user", "allowance", "topup", "period_start", "period_end"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


@admin.register(TopUp)
class TopUpAdmin(admin.ModelAdmin[TopUp]):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # use the "Grant credits" action on users, which writes the ledger


@admin.register(UpgradeRequest)
class UpgradeRequestAdmin(admin.ModelAdmin[UpgradeRequest]):
    list_display = ["created_at", "user", "plan", "status", "message"]
    list_filter = ["status", "plan"]
    list_editable = ["status"]
    search_fields = ["user__email"]


class GrantCreditsForm(forms.Form):
    amount = forms.IntegerField(min_value=1, max_value=1_000_000)
    reason = forms.CharField(max_length=200)
    expires_at = forms.DateTimeField(
        required=False, help_text="Leave empty for credits that never expire."
    )


@admin.action(description="Grant credits to selected users")
def grant_credits(
    modeladmin: admin.ModelAdmin[User], request: HttpRequest, queryset: QuerySet[User]
) -> HttpResponse | None:
    form = GrantCreditsForm(request.POST if "apply" in request.POST else None)
    if form.is_valid():
        for user in queryset:
            ledger.grant_topup(
                user,
                form.cleaned_data["amount"],
                form.cleaned_data["reason"],
                actor=admin_user(request),
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


UserAdmin.actions.append(grant_credits)
