"""The request inspector's story of one request, as far as this app knows it: the call, its
key, its rate-limit state, its timings, the credits it moved. What the request set off (its
job, the webhook deliveries) the page shows through the template tags of the apps above,
as the job page does, so this app never imports them."""

from __future__ import annotations

import shlex
from typing import Any

from django.conf import settings

from apikeys.models import ApiKey
from billing.models import LedgerEntry
from usage.models import UsageEvent


def timing_parts(server_timing: str) -> list[tuple[str, float]]:
    """`auth;dur=0.310, db;dur=1.2` as [("auth", 0.31), ("db", 1.2)]."""
    parts = []
    for item in server_timing.split(","):
        name, _, rest = item.strip().partition(";dur=")
        try:
            parts.append((name, float(rest)))
        except ValueError:
            continue
    return parts


def ledger_entries(event: UsageEvent) -> list[LedgerEntry]:
    """The credit movements of the job the request created: the reserve (debit) and a refund.
    Only for the request that created the job (the first one naming it): a later read of the
    job moved no credits."""
    if event.job_id is None or event.method != "POST":
        return []
    first = (
        UsageEvent.objects.filter(job_id=event.job_id, user_id=event.user_id)
        .order_by("created_at", "id")
        .values_list("id", flat=True)
        .first()
    )
    if first != event.pk:
        return []
    return list(
        LedgerEntry.objects.filter(user_id=event.user_id, job_id=event.job_id)
        .filter(kind__in=[LedgerEntry.Kind.DEBIT, LedgerEntry.Kind.REFUND])
        .order_by("created_at", "pk")
    )


def as_curl(event: UsageEvent) -> str:
    """The call again, with the key as `$NANO_API_KEY` (the log never holds a secret) and, for
    a body we do not keep, a file to fill in."""
    method, _, route = event.endpoint.partition(" ")
    path = event.path or route
    parts = ["curl"]
    if method not in ("GET", ""):
        parts.append(f"-X {method}")
    parts.append(shlex.quote(settings.SITE_URL.rstrip("/") + path))
    parts.append('-H "Authorization: Bearer $NANO_API_KEY"')
    if method in ("POST", "PUT", "PATCH"):
        parts += ["-H 'Content-Type: application/json'", "-d @body.json"]
    return " \\\n  ".join(parts)


def story(event: UsageEvent, key: ApiKey | None) -> dict[str, Any]:
    """Everything the inspector page shows, as its template reads it."""
    return {
        "event": event,
        "route": event.endpoint.partition(" ")[2],
        "key": key,
        "timings": timing_parts(event.server_timing),
        "ledger": ledger_entries(event),
        "curl": as_curl(event),
    }
