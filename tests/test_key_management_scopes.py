"""A `keys:write` key manages only keys whose scopes are a subset of its own (SPEC §3), and
never re-enables a key its owner disabled: nothing a weaker key does can reach a stronger one."""

from __future__ import annotations

import pytest

from apikeys.models import ApiKey


@pytest.fixture
def keys_only(alice, mint):
    """Alice's key that holds only `keys:write`."""
    return mint(alice, name="keys only", scopes=["keys:write"])


def _snapshot(key: ApiKey) -> tuple:
    key.refresh_from_db()
    return (key.name, key.status, key.digest, key.hint, key.previous_digest, key.scopes)


def _refused(response, scope: str = "generate") -> None:
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] == "INSUFFICIENT_PERMISSIONS"
    assert scope in error["details"]["required_scope"].split()


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("patch", "", {"name": "mine now"}),
        ("patch", "", {"enabled": False}),
        ("post", "/roll", {"grace": "now"}),
        ("delete", "", None),
    ],
)
def test_a_weaker_key_cannot_touch_a_stronger_one(api, alice_key, keys_only, method, suffix, body):
    strong, strong_secret = alice_key
    _, weak_secret = keys_only
    before = _snapshot(strong)
    response = api(method, f"/api/keys/{strong.pk}{suffix}", key=weak_secret, json=body)
    _refused(response)
    assert "secret" not in response.content.decode()
    assert _snapshot(strong) == before
    assert api("get", "/api/user/profile", key=strong_secret).status_code == 200


def test_rolling_a_stronger_key_gives_no_new_secret_that_could_generate(api, alice_key, keys_only):
    strong, _ = alice_key
    _, weak_secret = keys_only
    response = api("post", f"/api/keys/{strong.pk}/roll", key=weak_secret, json={"grace": "now"})
    _refused(response)
    assert ApiKey.objects.get(pk=strong.pk).rolled_at is None


def test_the_list_shows_only_keys_the_caller_may_manage(api, alice, alice_key, keys_only, mint):
    mint(alice, name="also keys only", scopes=["keys:write"])
    _, weak_secret = keys_only
    listed = api("get", "/api/keys", key=weak_secret).json()["data"]["keys"]
    assert sorted(k["name"] for k in listed) == ["also keys only", "keys only"]
    _, strong_secret = alice_key
    listed = api("get", "/api/keys", key=strong_secret).json()["data"]["keys"]
    assert sorted(k["name"] for k in listed) == ["alice full", "also keys only", "keys only"]


def test_create_is_refused_beyond_the_callers_scopes(api, alice, keys_only):
    _, weak_secret = keys_only
    response = api("post", "/api/keys", key=weak_secret, json={"name": "x", "scopes": ["ocr"]})
    _refused(response, "ocr")
    assert ApiKey.objects.filter(user=alice).count() == 1


def test_a_key_cannot_re_enable_a_key_its_owner_disabled(api, alice, mint):
    _, admin_secret = mint(alice, name="admin")
    target, target_secret = mint(alice, name="ci", scopes=["generate"])
    target.set_enabled(False)  # from the API Keys page
    before = _snapshot(target)
    response = api(
        "patch", f"/api/keys/{target.pk}", key=admin_secret, json={"enabled": True, "name": "x"}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "INSUFFICIENT_PERMISSIONS"
    assert response.json()["error"]["details"] == {"disabled_by": "owner"}
    assert _snapshot(target) == before  # the rename in the same call did not happen either
    assert api("get", "/api/user/profile", key=target_secret).status_code == 401


def test_a_key_may_re_enable_a_key_that_a_key_disabled(api, alice, mint):
    _, admin_secret = mint(alice, name="admin")
    target, target_secret = mint(alice, name="ci", scopes=["generate"])
    url = f"/api/keys/{target.pk}"
    assert api("patch", url, key=admin_secret, json={"enabled": False}).status_code == 200
    assert api("get", "/api/user/profile", key=target_secret).status_code == 401
    response = api("patch", url, key=admin_secret, json={"enabled": True})
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "active"
    assert api("get", "/api/user/profile", key=target_secret).status_code == 200


def test_the_owner_re_enables_in_the_browser_what_a_key_disabled(api, alice, mint):
    target, _ = mint(alice, name="ci", scopes=["generate"])
    target.set_enabled(False, by_key=True)
    assert target.set_enabled(True) is True
    assert target.status == ApiKey.Status.ACTIVE


def test_other_users_keys_are_not_found(api, alice_key, bob, mint):
    _, alice_secret = alice_key
    bobs, _ = mint(bob, name="bob", scopes=["keys:write"])
    before = _snapshot(bobs)
    for method, suffix, body in [
        ("get", "", None),
        ("patch", "", {"enabled": False}),
        ("post", "/roll", {}),
        ("delete", "", None),
    ]:
        response = api(method, f"/api/keys/{bobs.pk}{suffix}", key=alice_secret, json=body)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND"
    assert _snapshot(bobs) == before
