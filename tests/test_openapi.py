from __future__ import annotations

from nanostudio.schemas import ERROR_CODES


def test_openapi_describes_auth_routes_and_error_codes(client, db):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["ApiKeyAuth"]["description"],
    }
    assert schemes["ApiKeyBasic"]["scheme"] == "basic"
    paths = schema["paths"]
    for path in ("/api/user/profile", "/api/keys", "/api/keys/{key_id}", "/api/keys/{key_id}/roll"):
        assert path in paths, path
    for methods in paths.values():
        for operation in methods.values():
            assert {"ApiKeyAuth": []} in operation["security"]
            assert {"ApiKeyBasic": []} in operation["security"]
            assert "401" in operation["responses"]
            assert "429" in operation["responses"]
    for code in ERROR_CODES:
        assert f"`{code}`" in schema["info"]["description"]


def test_interactive_docs_are_served_from_our_static_files(client, db):
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
