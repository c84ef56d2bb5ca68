"""Once-only notices (credits.low, key.expiring) and the emails that go with them.

A notice is sent once: the first transaction to insert its Notice key sends it; any other
finds the key taken. Emails go out from the webhooks queue after the commit, to users whose
Settings → Notifications allow them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from nanostudio.schemas import utc_timestamp
from webhooks.delivery import emit
from webhooks.models import Endpoint, Notice, NotificationSettings

CREDITS_LOW_AT = (80, 100)  # percent of the period's allowance used
KEY_EXPIRING_DAYS = (14, 7, 1)


def _once(user_id: int, key: str) -> bool:
    """True the first time `key` is seen (in this transaction's view)."""
    try:
        with transaction.atomic():
            Notice.objects.create(user_id=user_id, key=key)
    except IntegrityError:
        return False
    return True


def credits_low(user_id: int, allowance: int, left: int) -> None:
    """After a charge that leaves 80 % or more of the allowance used: credits.low at 80 % and
    100 %, once per period each."""
    from billing.models import CreditBalance

    used = allowance - left
    percent = used * 100 // allowance
    due = [threshold for threshold in CREDITS_LOW_AT if percent >= threshold]
    if not due:
        return
    balance = CreditBalance.objects.get(user_id=user_id)
    period = balance.period_start.date().isoformat() if balance.period_start else "-"
    for threshold in due:
        if _once(user_id, f"credits.low:{user_id}:{period}:{threshold}"):
            data = {
                "threshold_percent": threshold,
                "allowance": allowance,
                "used": used,
                "remaining": balance.total,
                "resets_at": utc_timestamp(balance.period_end) if balance.period_end else None,
            }
            emit(user_id, "credits.low", data)
            _email_after_commit(user_id, "credits_low", data)


def _email_after_commit(user_id: int, kind: str, data: dict[str, Any]) -> None:
    transaction.on_commit(lambda: send_notice_email.delay(user_id, kind, data), robust=True)


@shared_task(name="webhooks.check_keys_expiring", ignore_result=True)
def check_keys_expiring() -> int:
    """Beat, hourly: key.expiring for keys that expire within 14, 7 and 1 days (once each)."""
    from apikeys.models import ApiKey
    from webhooks.receivers import key_data

    now = timezone.now()
    sent = 0
    keys = ApiKey.objects.live().filter(
        expires_at__gt=now, expires_at__lte=now + timedelta(days=max(KEY_EXPIRING_DAYS))
    )
    for key in keys:
        assert key.expires_at is not None
        left = key.expires_at - now
        due = [days for days in KEY_EXPIRING_DAYS if left <= timedelta(days=days)]
        if not due:
            continue
        days = min(due)
        with transaction.atomic():
            if not _once(key.user_id, f"key.expiring:{key.pk}:{days}"):
                continue
            data = key_data(key) | {"days": days}
            emit(key.user_id, "key.expiring", data)
            _email_after_commit(key.user_id, "key_expiring", data)
            sent += 1
    return sent


def endpoint_disabled(endpoint_id: uuid.UUID) -> None:
    endpoint = Endpoint.objects.get(pk=endpoint_id)
    send_notice_email.delay(
        endpoint.user_id,
        "endpoint_disabled",
        {"id": str(endpoint.pk), "url": endpoint.url, "reason": endpoint.disabled_reason},
    )


def _link(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def _compose(kind: str, data: dict[str, Any]) -> tuple[str, str]:
    if kind == "credits_low":
        subject = f"You have used {data['threshold_percent']} % of this month's credits"
        body = (
            f"You have used {data['used']} of your {data['allowance']} monthly credits; "
            f"{data['remaining']} are left. They renew on {data['resets_at']}.\n\n"
            f"Your plan and usage: {_link(reverse('billing:billing'))}"
        )
    elif kind == "key_expiring":
        days = data["days"]
        subject = f"Your API key “{data['name']}” expires in {days} day{'s' if days != 1 else ''}"
        body = (
            f"The API key “{data['name']}” ({data['hint']}) stops working at "
            f"{data['expires_at']}.\n\nRoll it for a new secret with the same name and scopes: "
            f"{_link(reverse('apikeys:list'))}#key-{data['id']}"
        )
    else:
        subject = "A webhook endpoint was disabled"
        body = (
            f"We disabled your webhook endpoint {data['url']}: {data['reason']}\n\n"
            f"Its delivery log, and Enable when it is fixed: "
            f"{_link(reverse('webhooks:endpoint', args=[data['id']]))}"
        )
    footer = (
        f"\n\nChoose which notices you get by email: {_link(reverse('webhooks:notifications'))}"
    )
    return f"[Nano Studio] {subject}", body + footer


@shared_task(name="webhooks.send_notice_email", ignore_result=True)
def send_notice_email(user_id: int, kind: str, data: dict[str, Any]) -> bool:
    from accounts.models import User

    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return False
    prefs, _ = NotificationSettings.objects.get_or_create(user=user)
    if not getattr(prefs, kind):
        return False
    subject, body = _compose(kind, data)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
    return True
