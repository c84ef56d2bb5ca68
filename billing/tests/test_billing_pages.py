from __future__ import annotations

from django.urls import reverse

from billing import ledger
from billing.models import CreditBalance, LedgerEntry, Subscription, TopUp, UpgradeRequest
from studio.models import Job


def test_billing_page_shows_plan_credits_ledger_and_plans(alice_client, alice):
    job = Job.objects.create(user=alice, kind="generate", credits=2)
    ledger.reserve(alice, 2, job)
    html = alice_client.get(reverse("billing:billing")).content.decode()
    assert "Free" in html
    assert '<span id="credits-remaining">48</span>' in html
    assert '<progress max="100" value="96"' in html
    assert "Resets" in html
    assert "Free monthly allowance" in html
    assert "generate job" in html
    assert str(job.pk)[:8] in html
    for name in ("Free", "Pro", "Enterprise", "$19/mo", "Contact us", "Unlimited"):
        assert name in html


def test_dashboard_shows_plan_credits_and_reset(alice_client):
    html = alice_client.get(reverse("accounts:dashboard")).content.decode()
    assert '<span id="credits-remaining">50</span>' in html
    assert "left of 50 this month" in html
    assert "Resets" in html


def test_another_users_ledger_is_never_shown(alice_client, alice, bob):
    ledger.grant_topup(bob, 7, "Bob's secret goodwill")
    html = alice_client.get(reverse("billing:billing") + f"?user={bob.pk}").content.decode()
    assert "Bob&#x27;s secret goodwill" not in html and "Bob's secret goodwill" not in html
    assert "bob@example.com" not in html


def test_request_upgrade_once(alice_client, alice):
    response = alice_client.post(reverse("billing:request_upgrade"), {"plan": "pro"})
    assert response.status_code == 302
    assert UpgradeRequest.objects.get(user=alice).plan.slug == "pro"
    alice_client.post(reverse("billing:request_upgrade"), {"plan": "enterprise"})
    assert UpgradeRequest.objects.filter(user=alice).count() == 1
    assert (
        alice_client.post(reverse("billing:request_upgrade"), {"plan": "hidden-nope"}).status_code
        == 404
    )
    assert "Requested" in alice_client.get(reverse("billing:billing")).content.decode()


def test_ledger_pages_with_htmx(alice_client, alice):
    for n in range(30):
        ledger.grant_topup(alice, 1, f"grant {n}")
    first = alice_client.get(reverse("billing:billing")).content.decode()
    assert "Page 1 of 2" in first
    partial = alice_client.get(
        reverse("billing:billing") + "?page=2", headers={"HX-Request": "true"}
    ).content.decode()
    assert partial.lstrip().startswith('<div id="ledger"')
    assert "Page 2 of 2" in partial


def test_admin_grants_credits_as_a_ledger_entry(admin_client, alice):
    url = reverse("admin:accounts_user_changelist")
    response = admin_client.post(url, {"action": "grant_credits", "_selected_action": [alice.pk]})
    assert b"Grant credits to" in response.content
    response = admin_client.post(
        url,
        {
            "action": "grant_credits",
            "_selected_action": [alice.pk],
            "apply": "1",
            "amount": "25",
            "reason": "Support ticket 42",
        },
    )
    assert response.status_code == 302
    assert CreditBalance.objects.get(user=alice).topup == 25
    entry = LedgerEntry.objects.get(user=alice, reason="Support ticket 42")
    assert (entry.kind, entry.amount, entry.actor.email) == ("grant", 25, "root@example.com")
    assert TopUp.objects.get(user=alice).amount == 25


def test_admin_changes_a_plan_through_the_ledger(admin_client, alice):
    from billing.models import Plan

    subscription = Subscription.objects.get(user=alice)
    url = reverse("admin:billing_subscription_change", args=[subscription.pk])
    pro = Plan.objects.get(slug="pro")
    response = admin_client.post(url, {"plan": pro.pk, "provider": "", "provider_ref": ""})
    assert response.status_code == 302
    assert Subscription.objects.get(user=alice).plan == pro
    assert CreditBalance.objects.get(user=alice).allowance == 500


def test_admin_ledger_is_read_only_with_totals(admin_client, alice):
    response = admin_client.get(reverse("admin:billing_ledgerentry_changelist"))
    assert response.status_code == 200
    assert b"net 50" in response.content
    entry = LedgerEntry.objects.filter(user=alice).first()
    response = admin_client.post(
        reverse("admin:billing_ledgerentry_change", args=[entry.pk]), {"amount": 999}
    )
    assert LedgerEntry.objects.get(pk=entry.pk).amount == 50
