"""What billing tells other apps (webhooks), sent inside the transaction of the change."""

from __future__ import annotations

from django.dispatch import Signal

credits_granted = Signal()  # sender=TopUp, user_id, amount, reason
# sender=CreditBalance, user_id, allowance (the plan's monthly), left (of it): a job was
# charged and 80 % or more of the allowance is used (billing.ledger.LOW_CREDITS_PERCENT).
credits_spent = Signal()
