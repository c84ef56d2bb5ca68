from __future__ import annotations

import pytest

from apikeys.models import PRESETS, ApiKey


def test_create_list_roll_revoke_from_a_script(api, alice, alice_key):
    _, admin_secret = alice_key
    response = api(
        "post",
        "/api/keys",
        key=admin_secret,
        json={"name": "ci deploy", "preset": "generate", "prefix": "sk-", "expires_in_days": 30},
    )
    assert response.status_code == 201
    data = response.json()["data"]
    secret = data["secret"]
    assert secret.startswith("sk-") and len(secret) == 41
    assert data["key"]["name"] == "ci deploy"
    assert data["key"]["scopes"] == sorted(PRESETS["generate"][1])
    assert data["key"]["status"] == "active"
    assert data["key"]["expires_at"] is not None
    assert api("get", "/api/user/profile", key=secret).status_code == 200

    listed = api("get", "/api/keys", key=admin_secret).json()["data"]["keys"]
    assert [k["name"] for k in listed] == ["ci deploy", "alice full"]
    assert all("secret" not in k for k in listed)

    key_id = data["key"]["id"]
    rolled = api(
        "post", f"/api/keys/{key_id}/roll", key=admin_secret, json={"grace": "now"}
    ).json()["data"]
    assert rolled["secret"] != secret
    assert api("get", "/api/user/profile", key=secret).status_code == 401
    assert api("get", "/api/user/profile", key=rolled["secret"]).status_code == 200

    response = api("delete", f"/api/keys/{key_id}", key=admin_secret)
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "revoked"
    assert api("get", "/api/user/profile", key=rolled["secret"]).status_code == 401


def test_a_key_cannot_grant_scopes_it_lacks(api, alice, mint):
    _, secret = mint(alice, name="keys only", scopes=["keys:write"])
    response = api("post", "/api/keys", key=secret, json={"name": "escalate", "preset": "full"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "INSUFFICIENT_PERMISSIONS"
    assert ApiKey.objects.filter(user=alice).count() == 1


def test_names_are_unique_per_user_until_revoked(api, alice, alice_key, bob, mint):
    key, secret = alice_key
    response = api("post", "/api/keys", key=secret, json={"name": "alice full", "preset": "read"})
    assert response.status_code == 400
    assert response.json()["error"]["details"]["fields"]["name"].startswith("You already have")
    mint(bob, name="alice full")  # another user may use the same name
    key.revoke()
    _, other = mint(alice, name="admin")
    assert (
        api(
            "post", "/api/keys", key=other, json={"name": "alice full", "preset": "read"}
        ).status_code
        == 201
    )


def test_the_plans_key_limit(api, alice, alice_key, mint):
    _, secret = alice_key
    for n in range(4):
        mint(alice, name=f"k{n}")
    response = api("post", "/api/keys", key=secret, json={"name": "sixth", "preset": "read"})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "INSUFFICIENT_PERMISSIONS"
    assert error["details"] == {"limit": 5}
    assert "allows 5 live API keys" in error["message"]
    assert ApiKey.objects.filter(user=alice).count() == 5


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("patch", "", {"name": "mine now"}),
        ("post", "/roll", {"grace": "now"}),
        ("delete", "", None),
    ],
)
def test_another_users_key_is_404_and_unchanged(api, alice_key, bob, mint, method, suffix, body):
    _, secret = alice_key
    bob_key, bob_secret = mint(bob, name="bob's")
    before = ApiKey.objects.filter(pk=bob_key.pk).values().get()
    response = api(method, f"/api/keys/{bob_key.pk}{suffix}", key=secret, json=body)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert ApiKey.objects.filter(pk=bob_key.pk).values().get() == before
    assert api("get", "/api/user/profile", key=bob_secret).status_code == 200


def test_disable_and_rename_by_patch(api, alice, alice_key, mint):
    _, secret = alice_key
    other, other_secret = mint(alice, name="other")
    response = api(
        "patch", f"/api/keys/{other.pk}", key=secret, json={"enabled": False, "name": "renamed"}
    )
    assert response.json()["data"]["status"] == "disabled"
    assert response.json()["data"]["name"] == "renamed"
    assert api("get", "/api/user/profile", key=other_secret).status_code == 401
