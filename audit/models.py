"""The audit log: what was done to an account's keys, sign-in details and credits, by whom
(the user, one of their keys, or an admin), when and from where. Append-only; it never holds
a secret (keys appear by name and hint)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from audit.context import actor_var

ACTIONS = {
    "key.created": "API key created",
    "key.rolled": "API key rolled",
    "key.grace_ended": "Old secret's grace period ended",
    "key.renamed": "API key renamed",
    "key.scopes_changed": "API key scopes changed",
    "key.expiry_changed": "API key expiry changed",
    "key.budget_changed": "API key budget changed",
    "key.rate_changed": "API key rate changed",
    "key.disabled": "API key disabled",
    "key.enabled": "API key enabled",
    "key.revoked": "API key revoked",
    "email.added": "Email address added",
    "email.confirmed": "Email address confirmed",
    "email.changed": "Primary email changed",
    "email.removed": "Email address removed",
    "password.changed": "Password changed",
    "password.reset": "Password reset",
    "mfa.added": "Two-factor method added",
    "mfa.removed": "Two-factor method removed",
    "credits.granted": "Credits granted",
    "plan.changed": "Plan changed",
}


class AppendOnly(Exception):
    pass


class AuditEntry(models.Model):
    class ActorKind(models.TextChoices):
        USER = "user", "You"
        KEY = "key", "API key"
        ADMIN = "admin", "Admin"
        SYSTEM = "system", "Nano Studio"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="audit_entries"
    )
    action = models.CharField(max_length=40)
    target = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices)
    actor = models.CharField(max_length=200)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "-created_at"])]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.action} by {self.actor}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnly("Audit entries are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnly("Audit entries are never deleted (only with their account).")

    @property
    def action_label(self) -> str:
        return ACTIONS.get(self.action, self.action)


def record(user_id: int, action: str, target: str = "", **details: Any) -> AuditEntry:
    """Append an entry for `user_id`'s account, by whoever is acting now (audit.context)."""
    actor = actor_var.get()
    return AuditEntry.objects.create(
        user_id=user_id,
        action=action,
        target=target[:200],
        details={name.replace("_", " "): value for name, value in details.items()},
        actor_kind=actor.kind,
        actor=actor.label[:200],
        ip=actor.ip,
    )
