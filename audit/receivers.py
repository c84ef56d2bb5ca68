"""allauth's account and MFA events, into the audit log."""

from __future__ import annotations

from typing import Any

from allauth.account import signals as account
from allauth.mfa import signals as mfa
from django.dispatch import receiver

from audit.models import record


@receiver(account.password_changed)
def password_changed(request: Any, user: Any, **_: Any) -> None:
    record(user.pk, "password.changed")


@receiver(account.password_set)
def password_set(request: Any, user: Any, **_: Any) -> None:
    record(user.pk, "password.changed", how="set for the first time")


@receiver(account.password_reset)
def password_reset(request: Any, user: Any, **_: Any) -> None:
    record(user.pk, "password.reset")


@receiver(account.email_added)
def email_added(request: Any, user: Any, email_address: Any, **_: Any) -> None:
    record(user.pk, "email.added", email_address.email)


@receiver(account.email_confirmed)
def email_confirmed(request: Any, email_address: Any, **_: Any) -> None:
    record(email_address.user_id, "email.confirmed", email_address.email)


@receiver(account.email_changed)
def email_changed(
    request: Any, user: Any, from_email_address: Any, to_email_address: Any, **_: Any
) -> None:
    before = from_email_address.email if from_email_address else ""
    record(user.pk, "email.changed", to_email_address.email, previous=before)


@receiver(account.email_removed)
def email_removed(request: Any, user: Any, email_address: Any, **_: Any) -> None:
    record(user.pk, "email.removed", email_address.email)


@receiver(mfa.authenticator_added)
def mfa_added(request: Any, user: Any, authenticator: Any, **_: Any) -> None:
    record(user.pk, "mfa.added", authenticator.get_type_display())


@receiver(mfa.authenticator_removed)
def mfa_removed(request: Any, user: Any, authenticator: Any, **_: Any) -> None:
    record(user.pk, "mfa.removed", authenticator.get_type_display())
