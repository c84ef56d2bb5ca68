"""Authentication backends that load the session's user with their plan and credit balance:
every page shows them, and one query is cheaper than three lazy ones."""

from __future__ import annotations

from allauth.account import auth_backends as allauth_backends
from django.contrib.auth import backends as django_backends

from accounts.models import User


class _UserWithBilling(django_backends.ModelBackend):
    def get_user(self, user_id: int) -> User | None:
        user = (
            User._default_manager.select_related("subscription__plan", "credit_balance")
            .filter(pk=user_id)
            .first()
        )
        return user if user is not None and self.user_can_authenticate(user) else None


class ModelBackend(_UserWithBilling):
    """Django's email + password backend (the admin login)."""


class AuthenticationBackend(_UserWithBilling, allauth_backends.AuthenticationBackend):
    """allauth's backend (sign-in, email login codes)."""
