"""Keys change without rolling: scopes (only narrower with a key), expiry, budget, rate; each
change in the security log."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from apikeys.models import ApiKey
from audit.models import AuditEntry
from conftest import make_user


def test_a_key_narrows_another_key_but_never_widens_it(api, alice, alice_key, mint):
    _, secret = alice_key
    target, _ = mint(alice, name="worker", scopes=["generate", "ocr", "jobs:read"])
    url = f"/api/keys/{target.pk}"
    response = api("patch", url, key=secret, json={"scopes": ["generate", "jobs:read"]})
    assert response.status_code == 200 and response.json()["data"]["scopes"] == [
        "generate",
        "jobs:read",
    ]
    response = api("patch", url, key=secret, json={"scopes": ["generate", "usage:read"]})
    assert response.status_code == 403
    assert response.json()["error"]["details"]["required_scope"] == "usage:read"
    soon = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    response = api("patch", url, key=secret, json={"expires_at": soon.isoformat()})
    assert response.json()["data"]["expires_at"].startswith(soon.strftime("%Y-%m-%dT%H:%M"))
    past = (timezone.now() - timedelta(days=1)).isoformat()
    response = api("patch", url, key=secret, json={"expires_at": past, "name": "should not"})
    assert response.status_code == 400
    target.refresh_from_db()
    assert target.name == "worker"  # all or nothing
    assert (
        api("patch", url, key=secret, json={"expires_at": None}).json()["data"]["expires_at"]
        is None
    )
    actions = list(
        AuditEntry.objects.filter(user=alice, action__startswith="key.").values_list(
            "action", flat=True
        )
    )
    assert actions.count("key.scopes_changed") == 1 and actions.count("key.expiry_changed") == 2
    change = AuditEntry.objects.get(action="key.scopes_changed")
    assert change.details == {"previous": "generate jobs:read ocr", "now": "generate jobs:read"}
    assert change.actor_kind == "key"


def test_the_owner_edits_a_key_on_the_page(fresh_login, alice, mint):
    key, _ = mint(alice, name="laptop", scopes=["jobs:read"])
    edit = reverse("apikeys:edit", args=[key.pk])
    assert b"Edit \xe2\x80\x9claptop\xe2\x80\x9d" in fresh_login.get(edit).content
    day = (timezone.now() + timedelta(days=30)).date()
    response = fresh_login.post(
        edit,
        {
            "scopes": ["jobs:read", "usage:read", "generate"],  # the owner may widen
            "expires_on": day.isoformat(),
            "budget_cap": "25",
            "budget_period": "week",
            "rate_per_minute": "4",
        },
    )
    assert response.status_code in (200, 302)
    key.refresh_from_db()
    assert key.scopes == ["generate", "jobs:read", "usage:read"]
    assert key.expires_at.date() == day
    assert (key.budget_credits, key.budget_period, key.rate_per_minute) == (25, "week", 4)
    response = fresh_login.post(
        edit, {"scopes": [], "rate_per_minute": "11", "budget_period": "day"}
    )
    assert response.status_code == 422  # no scope, and Free's rate is 10
    assert {e.action for e in AuditEntry.objects.filter(user=alice)} >= {
        "key.scopes_changed",
        "key.expiry_changed",
        "key.budget_changed",
        "key.rate_changed",
    }
    other = make_user("other-edit@example.com")
    theirs, _ = mint(other, name="theirs")
    assert fresh_login.get(reverse("apikeys:edit", args=[theirs.pk])).status_code == 404
    assert ApiKey.objects.get(pk=theirs.pk).scopes == theirs.scopes
