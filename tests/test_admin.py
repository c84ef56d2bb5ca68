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
    "model", ["accounts_user", "billing_plan", "billing_subscription", "apikeys_apikey"]
)
def test_admin_changelists_render(admin_client, alice_key, model):
    assert admin_client.get(reverse(f"admin:{model}_changelist")).status_code == 200
