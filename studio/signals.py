"""What the studio tells other apps (webhooks), sent inside the transaction of the change."""

from __future__ import annotations

from django.dispatch import Signal

# A job reached a final state: sender=Job, job (as it was before, for its id, owner and
# params), status. Sent once per job, in the transaction that ends it (after its refund).
job_finished = Signal()
