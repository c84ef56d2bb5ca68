from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apikeys.models import ApiKey

# The digest fields are not editable and never displayed; the secret is never stored.
KEY_FIELDS = (
    "user",
    "name",
    "hint",
    "scopes",
    "status",
    "expires_at",
    "created_at",
    "created_by",
    "last_used_at",
    "last_used_ip",
    "revoked_at",
    "rolled_at",
    "previous_valid_until",
)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    list_display = ["name", "user", "hint", "display_status", "last_used_at", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "user__email", "hint"]
    list_select_related = ["user"]
    fields = KEY_FIELDS
    # Admins may rename a key or change its expiry; everything else is the key's own record.
    readonly_fields = [field for field in KEY_FIELDS if field not in ("name", "expires_at")]
    actions = ["revoke"]

    @admin.display(description="Status")
    def display_status(self, key: ApiKey) -> str:
        return key.display_status

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Keys are minted by their owners, who are the only ones to see the secret.
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = list(queryset.exclude(status=ApiKey.Status.REVOKED))
        for key in keys:
            key.revoke()
        self.message_user(request, f"Revoked {len(keys)} key(s).", messages.SUCCESS)
