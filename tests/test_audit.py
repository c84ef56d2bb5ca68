"""The audit log: every change to keys, sign-in details and credits, by whom, from where;
append-only, and never a secret in it."""

from __future__ import annotations

import pytest
from django.db import connection

from audit.models import AppendOnly, AuditEntry
from billing.ledger import change_plan, grant_topup
from billing.models import Plan
from conftest import make_user

pytestmark = pytest.mark.django_db


def _actions(user):
    return list(
        AuditEntry.objects.filter(user=user).order_by("pk").values_list("action", "actor_kind")
    )


def test_key_changes_through_the_api_name_the_key_that_made_them(api, mint):
    user = make_user("audited@example.com", plan="pro")
    admin_key, admin_secret = mint(user, name="ops")
    secrets = [admin_secret]
    created = api("post", "/api/keys", key=admin_secret, json={"name": "ci", "preset": "read"})
    key_id = created.json()["data"]["key"]["id"]
    secrets.append(created.json()["data"]["secret"])
    api("patch", f"/api/keys/{key_id}", key=admin_secret, json={"name": "ci-2"})
    api("patch", f"/api/keys/{key_id}", key=admin_secret, json={"enabled": False})
    api("patch", f"/api/keys/{key_id}", key=admin_secret, json={"enabled": True})
    api(
        "patch",
        f"/api/keys/{key_id}",
        key=admin_secret,
        json={"budget": {"cap": 5, "period": "day"}},
    )
    api("patch", f"/api/keys/{key_id}", key=admin_secret, json={"rate_per_minute": 5})
    rolled = api("post", f"/api/keys/{key_id}/roll", key=admin_secret, json={"grace": "1h"})
    secrets.append(rolled.json()["data"]["secret"])
    api("delete", f"/api/keys/{key_id}", key=admin_secret)
    entries = AuditEntry.objects.filter(user=user, action__startswith="key.").order_by("pk")
    assert [e.action for e in entries] == [
        "key.created",  # "ops", minted by the test (no request: Nano Studio)
        "key.created",
        "key.renamed",
        "key.disabled",
        "key.enabled",
        "key.budget_changed",
        "key.rate_changed",
        "key.rolled",
        "key.revoked",
    ]
    by_api = entries[1:]
    assert {e.actor_kind for e in by_api} == {"key"}
    assert all(e.actor == f"API key {admin_key.label}" for e in by_api)
    assert all(e.ip == "127.0.0.1" for e in by_api)
    assert by_api[1].details == {"previous": "ci"} and by_api[1].target.startswith("ci-2 (")
    assert by_api[4].details == {"budget": "5 a day"}
    _no_secret_in_the_table(secrets)


def test_page_actions_admin_grants_and_plan_changes(client, db, mint):
    user = make_user("pages@example.com")
    client.post(  # a fresh sign-in: creating a key asks for one
        "/accounts/login/", {"login": "pages@example.com", "password": "correct horse battery"}
    )
    response = client.post(
        "/settings/api-keys/new/",
        {"name": "laptop", "preset": "full", "prefix": "nh_", "expiry": "never"},
    )
    assert response.status_code == 200
    staff = make_user("ops@example.com")
    grant_topup(user, 10, "goodwill", actor=staff)
    change_plan(user, Plan.objects.get(slug="pro"), actor=staff)
    entries = list(AuditEntry.objects.filter(user=user).order_by("pk"))
    assert [(e.action, e.actor_kind) for e in entries] == [
        ("key.created", "user"),
        ("credits.granted", "system"),  # outside a request; in the admin it is the admin
        ("plan.changed", "system"),
    ]
    assert entries[0].actor == "pages@example.com" and entries[0].ip == "127.0.0.1"
    assert entries[2].details == {"previous": "Free"} and entries[2].target == "Pro"


def test_the_admin_acts_as_admin(admin_client, db):
    user = make_user("granted@example.com")
    from billing.models import Subscription

    subscription = Subscription.objects.get(user=user)
    pro = Plan.objects.get(slug="pro")
    response = admin_client.post(
        f"/admin/billing/subscription/{subscription.pk}/change/",
        {"plan": pro.pk, "provider": subscription.provider, "provider_ref": ""},
    )
    assert response.status_code in (200, 302)
    entry = AuditEntry.objects.get(user=user, action="plan.changed")
    assert entry.actor_kind == "admin"


def test_password_and_email_changes(client, db):
    user = make_user("secure@example.com")
    client.force_login(user)
    response = client.post(
        "/accounts/password/change/",
        {
            "oldpassword": "correct horse battery",
            "password1": "a much longer new password",
            "password2": "a much longer new password",
        },
    )
    assert response.status_code == 302
    client.post("/accounts/email/", {"action_add": "", "email": "second@example.com"})
    actions = [a for a, _ in _actions(user)]
    assert "password.changed" in actions and "email.added" in actions
    _no_secret_in_the_table(["a much longer new password", "correct horse battery"])


def test_entries_are_append_only_and_the_page_shows_only_yours(client, db, mint):
    alice = make_user("log-a@example.com")
    bob = make_user("log-b@example.com")
    mint(alice, name="alice's")
    mint(bob, name="bob's")
    entry = AuditEntry.objects.get(user=alice)
    entry.action = "key.revoked"
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()
    client.force_login(alice)
    page = client.get("/settings/security-log/").content.decode()
    assert "alice&#x27;s" in page and "bob&#x27;s" not in page
    assert "API key created" in page


def _no_secret_in_the_table(secrets):
    """Every column of every entry, as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {AuditEntry._meta.db_table}")
        text = "\n".join(str(row) for row in cursor.fetchall())
    assert text
    for secret in secrets:
        assert secret not in text
        assert secret[3:35] not in text
