from __future__ import annotations

import pytest
from django.urls import reverse

from apikeys.models import ApiKey
from tests.test_accounts import reauthenticate


def test_empty_state_explains_keys_with_a_curl_example(alice_client):
    response = alice_client.get(reverse("apikeys:list"))
    html = response.content.decode()
    assert "No API keys yet" in html
    assert "curl http://testserver/api/user/profile" in html
    assert "0 of 5 live keys" in html


def test_create_shows_the_secret_once(fresh_login, alice):
    response = fresh_login.post(
        reverse("apikeys:create"),
        {"name": "server", "preset": "generate", "expiry": "30", "prefix": "sk-"},
    )
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    key = ApiKey.objects.get(user=alice)
    html = response.content.decode()
    start = html.index('value="sk-') + len('value="')
    secret = html[start : start + 41]
    assert ApiKey.objects.authenticate(secret).pk == key.pk
    assert "You won&#x27;t see it again" in html or "You won't see it again" in html
    assert f'"Authorization: Bearer {secret}"' in html  # curl
    assert f'headers={{"Authorization": "Bearer {secret}"}}' in html  # Python requests
    assert key.scopes == ["generate", "jobs:read", "ocr"]
    assert key.expires_at is not None
    # The table never shows it again.
    table = fresh_login.get(reverse("apikeys:list")).content.decode()
    assert secret not in table
    assert key.hint in table


def test_create_needs_a_recent_login(alice_client, alice):
    # force_login records no authentication: the password is asked for first.
    response = alice_client.get(reverse("apikeys:create"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    response = alice_client.post(
        reverse("apikeys:create"),
        {"name": "x", "preset": "full", "expiry": "never", "prefix": "nh_"},
    )
    assert response.status_code == 302
    assert not ApiKey.objects.filter(user=alice).exists()
    response = alice_client.get(reverse("apikeys:create"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(reverse("account_reauthenticate"))
    reauthenticate(alice_client)
    assert alice_client.get(reverse("apikeys:create")).status_code == 200


def test_create_validates_and_enforces_the_limit(fresh_login, alice, mint):
    response = fresh_login.post(
        reverse("apikeys:create"),
        {"name": "", "preset": "custom", "expiry": "custom", "prefix": "nh_"},
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "This field is required." in html
    assert "Pick at least one scope." in html
    assert "Pick the date the key should stop working." in html
    for n in range(5):
        mint(alice, name=f"k{n}")
    response = fresh_login.post(
        reverse("apikeys:create"),
        {"name": "sixth", "preset": "read", "expiry": "never", "prefix": "nh_"},
    )
    assert response.status_code == 422
    assert "Your plan allows 5 live API keys" in response.content.decode()
    assert ApiKey.objects.filter(user=alice).count() == 5
    assert "reached your plan" in fresh_login.get(reverse("apikeys:list")).content.decode()


def test_roll_disable_enable_rename_revoke(fresh_login, alice, mint):
    key, old = mint(alice, name="server")
    response = fresh_login.post(reverse("apikeys:roll", args=[key.pk]), {"grace": "1h"})
    assert response.status_code == 200
    html = response.content.decode()
    start = html.index('value="nh_') + len('value="')
    assert ApiKey.objects.authenticate(html[start : start + 41]).pk == key.pk
    key.refresh_from_db()
    assert key.in_grace
    assert ApiKey.objects.authenticate(old).pk == key.pk

    fresh_login.post(reverse("apikeys:toggle", args=[key.pk]), {"enabled": "0"})
    key.refresh_from_db()
    assert key.status == "disabled"
    fresh_login.post(reverse("apikeys:toggle", args=[key.pk]), {"enabled": "1"})
    key.refresh_from_db()
    assert key.status == "active"

    fresh_login.post(reverse("apikeys:rename", args=[key.pk]), {"name": "backend"})
    key.refresh_from_db()
    assert key.name == "backend"

    confirm = fresh_login.get(reverse("apikeys:revoke", args=[key.pk]))
    assert "Revoke “backend”?" in confirm.content.decode()
    response = fresh_login.post(
        reverse("apikeys:revoke", args=[key.pk]), headers={"HX-Request": "true"}
    )
    assert response.status_code == 204
    assert "keys-changed" in response["HX-Trigger"]
    key.refresh_from_db()
    assert key.status == "revoked"


@pytest.mark.parametrize(
    ("name", "method", "data"),
    [
        ("apikeys:roll", "post", {"grace": "now"}),
        ("apikeys:roll", "get", None),
        ("apikeys:rename", "post", {"name": "mine"}),
        ("apikeys:toggle", "post", {"enabled": "0"}),
        ("apikeys:revoke", "get", None),
        ("apikeys:revoke", "post", {}),
    ],
)
def test_another_users_key_is_404_and_unchanged(fresh_login, bob, mint, name, method, data):
    key, secret = mint(bob, name="bob's")
    before = ApiKey.objects.filter(pk=key.pk).values().get()
    response = getattr(fresh_login, method)(reverse(name, args=[key.pk]), data)
    assert response.status_code == 404
    assert ApiKey.objects.filter(pk=key.pk).values().get() == before
    assert ApiKey.objects.authenticate(secret).pk == key.pk


def test_htmx_gets_partials(fresh_login, alice, mint):
    mint(alice, name="server")
    table = fresh_login.get(
        reverse("apikeys:list"), headers={"HX-Request": "true"}
    ).content.decode()
    assert table.lstrip().startswith('<div id="key-table"')
    assert "<html" not in table
    dialog = fresh_login.get(
        reverse("apikeys:create"), headers={"HX-Request": "true"}
    ).content.decode()
    assert dialog.lstrip().startswith("<form")
    assert 'id="dialog-title"' in dialog
