from __future__ import annotations

import re

import pytest
from django.urls import reverse

PAGES = [
    "accounts:dashboard",
    "studio:studio",
    "studio:jobs",
    "usage:usage",
    "billing:billing",
    "apikeys:list",
]


def test_the_landing_page_invites_visitors(client, db):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Start free" in response.content
    assert reverse("account_signup").encode() in response.content


@pytest.mark.parametrize("name", PAGES)
def test_every_app_page_needs_login(client, db, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("name", PAGES)
def test_every_app_page_renders_with_navigation(alice_client, name):
    response = alice_client.get(reverse(name))
    assert response.status_code == 200
    html = response.content.decode()
    for label in ("Dashboard", "Studio", "Jobs", "Usage", "Billing", "API Keys"):
        assert f">{label}</a>" in html
    assert 'aria-current="page"' in html
    # Scripts and styles come from our own static files, never another host.
    assert re.search(r'<(?:script|link)[^>]+(?:src|href)="(?:https?:)?//', html) is None
    assert '"X-CSRFToken": "' in html


def test_htmx_is_served_from_our_static_files(alice_client):
    html = alice_client.get(reverse("accounts:dashboard")).content.decode()
    assert re.search(r'<script src="/static/django_htmx/htmx[-0-9.]*min.js"', html)


def test_the_404_page_is_ours(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"Page not found" in response.content


def test_responses_carry_a_csp_without_inline_or_eval_scripts(client, db):
    response = client.get("/")
    csp = response["Content-Security-Policy"]
    script_src = next(part for part in csp.split(";") if "script-src" in part)
    assert "'self'" in script_src
    assert "unsafe-inline" not in script_src
    assert "unsafe-eval" not in csp
    assert response["X-Request-Id"].startswith("req_")


def test_json_responses_carry_a_csp_that_allows_nothing(client, db):
    response = client.get("/healthz")
    assert response["Content-Type"] == "application/json"
    assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    # The API's HTML docs page keeps the page policy.
    assert "script-src 'self'" in client.get("/api/docs")["Content-Security-Policy"]


def test_no_template_has_an_inline_script():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "templates"
    for template in root.rglob("*.html"):
        text = template.read_text()
        for tag in text.split("<script")[1:]:
            head = tag.split(">", 1)[0]
            assert "src=" in head or 'type="application/json"' in head, template
