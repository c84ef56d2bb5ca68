from __future__ import annotations

from django.contrib import admin

from billing.models import Plan, Subscription


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
    autocomplete_fields = ["user"]
