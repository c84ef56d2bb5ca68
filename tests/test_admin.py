from __future__ import annotations

import pytest
from django.urls import reverse


def test_keys_admin_lists_and_revokes_without_showing_secrets(admin_client, alice_key):
    key, secret = alice_key
    page = admin_client.get(reverse("admin:apikeys_apikey_changelist")).content.decode()
    assert key.hint in page
    assert "alice@example.com" in page
    detail = admin_client.get(
        reverse("admin:apikeys_apikey_change", args=[key.pk])
    ).content.decode()
    for page_html in (page, detail):
        assert secret not in page_html
        assert key.digest not in page_html
    response = admin_client.post(
        reverse("admin:apikeys_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.status == "revoked"
    assert admin_client.get(reverse("admin:apikeys_apikey_add")).status_code == 403


@pytest.mark.parametrize(
    "model",
    [
        "accounts_user",
        "billing_plan",
        "billing_subscription",
        "apikeys_apikey",
        "studio_template",
        "studio_job",
    ],
)
def test_admin_changelists_render(admin_client, alice_key, model):
    assert admin_client.get(reverse(f"admin:{model}_changelist")).status_code == 200


def test_usage_by_user_answers_who_is_using_what(admin_client, api, alice, bob, mint):
    from usage import metering

    _, alice_secret = mint(alice, name="alice key")
    _, bob_secret = mint(bob, name="bob key")
    for _ in range(3):
        api("get", "/api/user/profile", key=alice_secret)
    api("get", "/api/jobs/00000000-0000-4000-8000-000000000000", key=alice_secret)
    api("get", "/api/user/profile", key=bob_secret)
    metering.roll_up()
    response = admin_client.get(reverse("admin:usage_userusage_changelist"))
    assert response.status_code == 200
    rows = [(u.email, u.requests_30d, u.errors_30d) for u in response.context["cl"].result_list]
    assert rows == [("alice@example.com", 4, 1), ("bob@example.com", 1, None)]
    rollups = admin_client.get(
        reverse("admin:usage_usagerollup_changelist") + f"?user__id__exact={alice.pk}"
    )
    assert rollups.status_code == 200
    assert {r.user_id for r in rollups.context["cl"].result_list} == {alice.pk}
    # Read-only: nothing can be added, changed or deleted from here.
    assert admin_client.get(reverse("admin:usage_usagerollup_add")).status_code == 403
    assert (
        admin_client.get(reverse("admin:usage_userusage_change", args=[alice.pk])).status_code
        == 200
    )
    assert (
        admin_client.post(
            reverse("admin:usage_userusage_delete", args=[alice.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
