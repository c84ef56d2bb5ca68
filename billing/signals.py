"""What billing tells other apps (webhooks), sent inside the transaction of the change."""

from __future__ import annotations

from django.dispatch import Signal

credits_granted = Signal()  # sender=TopUp, user_id, amount, reason
credits_spent = Signal()  # sender=CreditBalance, user_id: a job was charged
