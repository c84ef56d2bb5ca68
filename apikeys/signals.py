"""What the keys app tells other apps (webhooks), sent inside the transaction of the change."""

from __future__ import annotations

from django.dispatch import Signal

key_revoked = Signal()  # sender=ApiKey, key: the revoked key (once)
