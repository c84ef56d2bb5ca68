from __future__ import annotations

from django.contrib import admin

from webhooks.models import Attempt, Delivery, Endpoint


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin[Endpoint]):
    list_display = ["url", "user", "enabled", "failing_since", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["url", "user__email"]
    readonly_fields = ["failing_since", "previous_valid_until"]
    exclude = ["secret_encrypted", "previous_secret_encrypted"]


class AttemptInline(admin.TabularInline[Attempt, Delivery]):
    model = Attempt
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in Attempt._meta.fields]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin[Delivery]):
    list_display = ["created_at", "event", "url", "status", "attempts", "last_status_code"]
    list_filter = ["status", "event"]
    search_fields = ["message_id", "url", "user__email"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [AttemptInline]
