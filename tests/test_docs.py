"""The docs pages: public, linked from the product, no broken internal links, no secrets."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.contrib.staticfiles import finders

from docs.views import PAGES


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])
        if tag in ("img", "script", "link") and (attributes.get("src") or attributes.get("href")):
            self.links.append(attributes.get("src") or attributes["href"])


def _crawl(client) -> dict[str, tuple[int, set[str]]]:
    """Every page reachable from /docs/ on this site: path -> (status, element ids)."""
    seen: dict[str, tuple[int, set[str]]] = {}
    fragments: list[tuple[str, str, str]] = []
    queue = ["/docs/"]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        if path.startswith("/static/"):
            # Served by WhiteNoise in production, not by the test client: the file must exist.
            found = finders.find(path.removeprefix("/static/"))
            seen[path] = (200 if found else 404, set())
            continue
        response = client.get(path)
        parser = _Links()
        if response.status_code == 200 and "text/html" in response["Content-Type"]:
            parser.feed(response.content.decode())
        seen[path] = (response.status_code, parser.ids)
        if not path.startswith("/docs/"):
            continue  # check links out of the docs, but don't crawl the whole product
        for href in parser.links:
            url = urlsplit(urljoin(path, href))
            if url.scheme not in ("", "http") or (url.netloc and url.netloc != "testserver"):
                continue
            if url.fragment:
                fragments.append((path, url.path, url.fragment))
            queue.append(url.path + (f"?{url.query}" if url.query else ""))
    for source, target, fragment in fragments:
        status, ids = seen[target]
        assert status != 200 or fragment in ids, (
            f"{source} links to missing #{fragment} on {target}"
        )
    return seen


@pytest.mark.django_db
def test_every_docs_page_answers_without_login_and_no_link_is_broken(client):
    seen = _crawl(client)
    for page in PAGES:
        assert seen.get(page.url, (None,))[0] == 200, page.url
    broken = {path: status for path, (status, _) in seen.items() if status >= 400}
    assert broken == {}
    # Links out of the docs were followed too: sign-up, API keys (login first), the API reference.
    assert {"/accounts/signup/", "/settings/api-keys/", "/api/docs"} <= set(seen)


def test_the_docs_are_linked_from_the_navigation_the_keys_page_and_the_api_reference(client, alice):
    assert 'href="/docs/"' in client.get("/").content.decode()
    client.force_login(alice)
    assert 'href="/docs/"' in client.get("/settings/api-keys/").content.decode()
    schema = client.get("/api/openapi.json").json()
    assert "[/docs/](/docs/)" in schema["info"]["description"]
    assert "/api/docs" in client.get("/docs/").content.decode()


@pytest.mark.django_db
def test_examples_use_the_sites_base_url_and_never_a_secret(client, alice, mint, settings):
    settings.ALLOWED_HOSTS = ["studio.test", "testserver"]
    page = client.get("/docs/api/profile/", HTTP_HOST="studio.test").content.decode()
    assert "http://studio.test/api/user/profile" in page
    assert "studio.example.com" not in page
    assert "Sign up" in page
    key, secret = mint(alice, name="laptop")
    client.force_login(alice)
    page = client.get("/docs/api/profile/").content.decode()
    assert key.hint in page and "laptop" in page
    assert secret not in page
    assert re.search(r"nh_[0-9A-Za-z]{38}", page) is None


@pytest.mark.django_db
def test_the_plans_and_catalogue_come_from_the_database(client):
    from billing.models import Plan
    from studio.models import Template

    Plan.objects.filter(slug="free").update(rate_per_minute=17, burst=23)
    assert "17/min, burst 23" in client.get("/docs/rate-limits/").content.decode()
    catalogue = client.get("/docs/templates/").content.decode()
    for template in Template.objects.filter(enabled=True):
        assert f'"template": "{template.name}"' in catalogue
    assert "Joyful Laugh" in catalogue and "Unavailable" in catalogue  # no upstream configured


@pytest.mark.django_db
def test_the_errors_page_lists_every_code_with_a_fix(client):
    from nanostudio.errors import ERROR_CODES

    page = client.get("/docs/errors/").content.decode()
    for code in ERROR_CODES:
        assert f'id="{code.lower()}"' in page
    assert "See the message." not in page  # every code has its own advice
