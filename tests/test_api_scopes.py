"""Each preset on each route: allowed or 403 naming the scope. Extended as routes are added."""

from __future__ import annotations

import pytest

from apikeys.models import PRESETS

# (method, path, required scopes or None for "any valid key")
ROUTES = [
    ("get", "/api/user/profile", None),
    ("get", "/api/keys", ("keys:write",)),
    ("post", "/api/keys", ("keys:write",)),
    ("get", "/api/usage", ("usage:read",)),
]


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize(("method", "path", "scopes"), ROUTES)
def test_each_preset_on_each_route(api, alice, mint, preset, method, path, scopes):
    _, secret = mint(alice, name=f"{preset} key", scopes=PRESETS[preset][1])
    response = api(method, path, key=secret, json={} if method == "post" else None)
    granted = scopes is None or any(scope in PRESETS[preset][1] for scope in scopes)
    if granted:
        assert response.status_code not in (401, 403), response.content
    else:
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "INSUFFICIENT_PERMISSIONS"
        assert error["details"]["required_scope"] == " or ".join(scopes)
