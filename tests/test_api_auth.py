from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone

from apikeys.models import PRESETS, ApiKey


def _error(response):
    body = response.json()
    assert body["success"] is False
    return body["error"]


def test_profile_with_a_bearer_key(api, alice, alice_key):
    key, secret = alice_key
    response = api("get", "/api/user/profile", key=secret)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert data["user"]["email"] == "alice@example.com"
    assert data["user"]["id"] == alice.pk
    assert data["plan"]["slug"] == "free"
    assert data["plan"]["monthly_credits"] == 50
    assert data["credits"]["monthly_allowance"] == 50
    assert data["credits"]["resets_at"] is not None
    assert data["key"] == {
        "id": key.pk,
        "name": "alice full",
        "hint": key.hint,
        "scopes": sorted(PRESETS["full"][1]),
        "expires_at": None,
    }
    assert response["X-Request-Id"].startswith("req_")


def test_profile_with_http_basic(api, alice_key):
    _, secret = alice_key
    token = base64.b64encode(f"{secret}:".encode()).decode()
    response = api("get", "/api/user/profile", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 200
    token = base64.b64encode(f"{secret}:a-password".encode()).decode()
    response = api("get", "/api/user/profile", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 401
    assert _error(response)["code"] == "INVALID_API_KEY"


def test_missing_key(api, db):
    response = api("get", "/api/user/profile")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    error = _error(response)
    assert error["code"] == "MISSING_API_KEY"
    assert "Authorization: Bearer" in error["message"]


@pytest.mark.parametrize(
    "header",
    ["Bearer nh_notakey", "Bearer ", "Token abc", "Basic %%%", "Bearer sk-" + "a" * 38],
)
def test_invalid_credentials(api, db, header):
    response = api("get", "/api/user/profile", headers={"Authorization": header})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert _error(response)["code"] == "INVALID_API_KEY"


def test_unknown_but_well_formed_key(api, db):
    from apikeys.models import generate_secret

    response = api("get", "/api/user/profile", key=generate_secret())
    assert response.status_code == 401
    assert _error(response)["code"] == "INVALID_API_KEY"


def test_a_key_in_the_query_string_is_refused(api, alice_key):
    _, secret = alice_key
    for query in (f"?api_key={secret}", f"?anything={secret}", "?token=abc"):
        response = api("get", "/api/user/profile" + query)
        assert response.status_code == 401
        error = _error(response)
        assert error["code"] == "INVALID_API_KEY"
        assert "not accepted in the URL" in error["message"]
    # Even alongside a valid header.
    response = api("get", f"/api/user/profile?api_key={secret}", key=secret)
    assert response.status_code == 401


def test_a_browser_session_is_ignored(client, alice):
    client.force_login(alice)
    response = client.get("/api/user/profile")
    assert response.status_code == 401
    assert _error(response)["code"] == "MISSING_API_KEY"


def test_expired_key(api, alice, mint):
    key, secret = mint(alice, expires_at=timezone.now() + timedelta(days=1))
    assert api("get", "/api/user/profile", key=secret).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        response = api("get", "/api/user/profile", key=secret)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    error = _error(response)
    assert error["code"] == "EXPIRED_API_KEY"
    assert error["details"]["expired_at"] == key.expires_at.isoformat().replace("+00:00", "Z")


def test_revoked_and_disabled_keys_fail_on_the_very_next_request(api, alice_key):
    key, secret = alice_key
    assert api("get", "/api/user/profile", key=secret).status_code == 200
    key.set_enabled(False)
    assert _error(api("get", "/api/user/profile", key=secret))["code"] == "INVALID_API_KEY"
    key.set_enabled(True)
    assert api("get", "/api/user/profile", key=secret).status_code == 200
    key.revoke()
    assert _error(api("get", "/api/user/profile", key=secret))["code"] == "INVALID_API_KEY"
    key.set_enabled(True)  # revoked is final
    assert ApiKey.objects.get(pk=key.pk).status == "revoked"
    assert api("get", "/api/user/profile", key=secret).status_code == 401


def test_rolled_key_old_secret_works_during_grace_only(api, alice_key):
    key, old = alice_key
    new = key.roll("1h")
    assert new != old
    assert api("get", "/api/user/profile", key=new).status_code == 200
    assert api("get", "/api/user/profile", key=old).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=59)):
        assert api("get", "/api/user/profile", key=old).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=1)):
        assert api("get", "/api/user/profile", key=old).status_code == 401
        assert api("get", "/api/user/profile", key=new).status_code == 200


def test_roll_now_ends_the_old_secret_at_once(api, alice_key):
    key, old = alice_key
    new = key.roll("now")
    assert api("get", "/api/user/profile", key=old).status_code == 401
    assert api("get", "/api/user/profile", key=new).status_code == 200


def test_last_used_is_written_at_most_once_a_minute(api, alice_key, django_assert_num_queries):
    key, secret = alice_key
    api("get", "/api/user/profile", key=secret, REMOTE_ADDR="203.0.113.9")
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    assert key.last_used_ip == "203.0.113.9"
    api("get", "/api/user/profile", key=secret, REMOTE_ADDR="203.0.113.10")
    key.refresh_from_db()
    assert key.last_used_at == first
    assert key.last_used_ip == "203.0.113.9"
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        api("get", "/api/user/profile", key=secret, REMOTE_ADDR="203.0.113.10")
    key.refresh_from_db()
    assert key.last_used_at > first
    assert key.last_used_ip == "203.0.113.10"


@override_settings(SECURE_SSL_REDIRECT=True)
def test_plain_http_api_call_is_refused_not_redirected(api, alice_key):
    _, secret = alice_key
    response = api("get", "/api/user/profile", key=secret)
    assert response.status_code == 403
    assert _error(response)["code"] == "HTTPS_REQUIRED"
    response = api("get", "/api/user/profile", key=secret, headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 200


def test_unknown_route_405_and_validation_errors_use_the_envelope(api, alice_key):
    _, secret = alice_key
    response = api("get", "/api/nope", key=secret)
    assert response.status_code == 404
    assert _error(response)["code"] == "NOT_FOUND"
    response = api("put", "/api/user/profile", key=secret)
    assert response.status_code == 405
    assert _error(response)["code"] == "METHOD_NOT_ALLOWED"
    response = api("post", "/api/keys", key=secret, json={"name": ""})
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert "name" in error["details"]["fields"]
    response = client_post_raw(api, secret, "{not json")
    assert response.status_code == 400
    assert _error(response)["code"] == "VALIDATION_ERROR"


def client_post_raw(api, secret, body):
    return api("post", "/api/keys", key=secret, data=body, content_type="application/json")


def test_body_over_the_limit(api, alice_key, settings):
    _, secret = alice_key
    settings.API_MAX_BODY_BYTES = 1000
    response = api("post", "/api/keys", key=secret, json={"name": "x" * 2000})
    assert response.status_code == 413
    assert _error(response)["code"] == "PAYLOAD_TOO_LARGE"


def test_an_unexpected_error_is_a_500_envelope_without_a_trace(api, alice_key, monkeypatch):
    _, secret = alice_key
    import accounts.api

    def boom(user):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(accounts.api, "credit_summary", boom)
    response = api("get", "/api/user/profile", key=secret)
    assert response.status_code == 500
    error = _error(response)
    assert error["code"] == "INTERNAL_ERROR"
    assert "secret internals" not in response.content.decode()
    assert "Traceback" not in response.content.decode()


def test_profile_is_served_by_the_auth_query_and_the_usage_event(
    api, alice_key, django_assert_num_queries
):
    """One query, the key's; the usage event goes to the Redis stream (production mode) or,
    in embedded mode, is the second query."""
    from usage import stream

    _, secret = alice_key
    api("get", "/api/user/profile", key=secret)  # first use writes last_used once
    events = stream.events()
    with django_assert_num_queries(1 if events else 2) as captured:
        response = api("get", "/api/user/profile", key=secret)
    if events:
        assert events.waiting() == 2
    else:
        assert captured.captured_queries[1]["sql"].startswith('INSERT INTO "billing_usageevent"')
    assert response.json()["data"]["credits"]["remaining"] == 50
