from __future__ import annotations

from nanostudio.errors import ERROR_CODES


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


def _project_schemas() -> list[type]:
    from nanostudio.schemas import Schema

    seen, stack = [], [Schema]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            if sub.__module__.split(".")[0] in {
                "accounts",
                "apikeys",
                "billing",
                "studio",
                "nanostudio",
            }:
                seen.append(sub)
    return seen


def test_every_schema_has_a_unique_name(client, db):
    """Two schemas of one name used to share one component: every profile answer broke the
    published schema."""
    import nanostudio.api  # noqa: F401  (imports every router, so every schema is defined)

    names = [cls.__name__ for cls in _project_schemas()]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    components = client.get("/api/openapi.json").json()["components"]["schemas"]
    profile_key = components["ProfileOut"]["properties"]["key"]["$ref"].rsplit("/", 1)[1]
    assert profile_key == "CurrentKeyOut"
    assert "previous_secret_valid_until" in components["KeyOut"]["properties"]


def test_the_schema_states_the_rules_the_server_applies(client, db):
    paths = client.get("/api/openapi.json").json()["paths"]
    schemas = client.get("/api/openapi.json").json()["components"]["schemas"]
    create = schemas["KeyCreateIn"]
    assert create["properties"]["scopes"]["minItems"] == 1
    assert create["oneOf"] == [{"required": ["preset"]}, {"required": ["scopes"]}]
    assert create["additionalProperties"] is False
    cursor = next(p for p in paths["/api/jobs"]["get"]["parameters"] if p["name"] == "cursor")
    assert "next_cursor" in cursor["description"]
    usage = {p["name"]: p for p in paths["/api/usage"]["get"]["parameters"]}
    assert "366 days" in usage["from"]["description"]
    generate = paths["/api/generate"]["post"]["responses"]
    assert {"400", "402", "409", "413", "422", "429", "502", "503", "504"} <= set(generate)
    for methods in paths.values():
        for operation in methods.values():
            assert {"400", "401", "403", "429", "500", "503"} <= set(operation["responses"])
