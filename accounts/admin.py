from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest

from accounts.models import User


def admin_user(request: HttpRequest) -> User:
    """The staff member using the admin (the admin site lets no one else in)."""
    assert isinstance(request.user, User)
    return request.user


@admin.register(User)
class UserAdmin(BaseUserAdmin[User]):
    ordering = ["email"]
    actions: list[Any] = []  # billing.admin adds "Grant credits"
    list_display = ["email", "name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
