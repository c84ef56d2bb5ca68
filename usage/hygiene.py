"""Key hygiene on Settings → API Keys, from the usage we already record: each key's requests
in the last 30 days, keys unused for 60 days, keys whose scopes exceed what they used, and a
rolled key's traffic on its old and new secret during the grace period."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db.models import Count, Max, Q
from django.utils import timezone

from billing.periods import utc_today
from usage import reports
from usage.models import UsageEvent

if TYPE_CHECKING:
    from apikeys.models import ApiKey

WINDOW_DAYS = 30
UNUSED_DAYS = 60
NARROW_MIN_AGE_DAYS = 7  # too young a key has not shown what it is for yet
GRACE_QUIET = timedelta(hours=1)


@dataclass(frozen=True)
class Grace:
    """Calls since the roll with the old secret and with the new one."""

    old: int
    new: int
    last_old: datetime | None
    safe_to_end: bool  # the old secret has not been used for GRACE_QUIET


@dataclass
class KeyHealth:
    requests: int = 0  # in the last WINDOW_DAYS
    used_scopes: list[str] = field(default_factory=list)
    unused: bool = False
    narrow_to: list[str] = field(default_factory=list)  # a strict subset of its scopes, or []
    grace: Grace | None = None


def _used_scopes(key: ApiKey, endpoints: set[str]) -> list[str]:
    """The key's scopes its calls needed: for each endpoint, the accepted scopes it holds (all
    of them where several would do, e.g. cancel takes generate or ocr)."""
    needed = reports.endpoint_scopes()
    return sorted({s for e in endpoints for s in needed.get(e, ()) if s in key.scopes})


def _grace(key: ApiKey, now: datetime) -> Grace:
    counts = UsageEvent.objects.filter(key_id=key.pk, created_at__gte=key.rolled_at).aggregate(
        old=Count("id", filter=Q(previous_secret=True)),
        new=Count("id", filter=Q(previous_secret=False)),
        last_old=Max("created_at", filter=Q(previous_secret=True)),
    )
    quiet_since = counts["last_old"] or key.rolled_at
    return Grace(
        old=counts["old"],
        new=counts["new"],
        last_old=counts["last_old"],
        safe_to_end=quiet_since is not None and quiet_since <= now - GRACE_QUIET,
    )


def health(user_id: int, keys: list[ApiKey]) -> dict[int, KeyHealth]:
    """Each key's health, by key id: one rollup read for all keys, one count per key in grace."""
    now = timezone.now()
    last = utc_today()
    rows = reports.daily(
        user_id, last - timedelta(days=WINDOW_DAYS - 1), last, by=("key_id", "endpoint")
    )
    requests: dict[int, int] = {}
    endpoints: dict[int, set[str]] = {}
    for _, (key_id, endpoint), _, count, _, _ in rows:
        requests[key_id] = requests.get(key_id, 0) + count
        endpoints.setdefault(key_id, set()).add(endpoint)
    result = {}
    for key in keys:
        state = KeyHealth(requests=requests.get(key.pk, 0))
        result[key.pk] = state
        if key.display_status != "active":
            continue
        state.unused = (key.last_used_at or key.created_at) <= now - timedelta(days=UNUSED_DAYS)
        state.used_scopes = _used_scopes(key, endpoints.get(key.pk, set()))
        old_enough = key.created_at <= now - timedelta(days=NARROW_MIN_AGE_DAYS)
        if old_enough and state.used_scopes and set(state.used_scopes) < set(key.scopes):
            state.narrow_to = state.used_scopes
        if key.in_grace:
            state.grace = _grace(key, now)
    return result
