"""Every page at a phone's width (390 px) and a desktop's (1280 px): nothing scrolls sideways, no
action button is cut off, and axe-core finds no serious or critical accessibility violation.
Screenshots of each land in var/screenshots/pages/."""

from __future__ import annotations

import json
import re

import pytest

from conftest import IN_CI, ROOT, SCREENSHOTS, sample_b64
from docs.views import PAGES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (390, 1280)
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"  # `npm ci` (make test does)
SIGNED_OUT = ["/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"] + [
    page.url for page in PAGES
]
SIGNED_IN = [
    "/dashboard/",
    "/studio/",
    "/studio/?tab=ocr",
    "/jobs/",
    "{job}",
    "/usage/",
    "/usage/requests/",
    "/usage/requests/?status=4xx",
    "{request}",
    "/billing/",
    "/settings/api-keys/",
    "/settings/webhooks/",
    "{endpoint}",
    "/settings/notifications/",
    "/settings/security-log/",
    "/accounts/email/",
    "/accounts/password/change/",
    "/accounts/2fa/",
    "/accounts/2fa/totp/activate/",
    "/account/delete/",
]

# What a page may not do at any width: scroll sideways, or hide part of a button or link that
# looks like one (clipped by an ancestor that cuts off its overflow).
LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > window.innerWidth) {
    const wide = [...document.querySelectorAll("body *")]
      .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
      .slice(0, 3)
      .map((el) => el.tagName.toLowerCase() + (el.className ? "." + el.className : ""));
    problems.push(`page is ${root.scrollWidth}px wide: ${wide.join(", ")}`);
  }
  for (const el of document.querySelectorAll("button, .btn, input[type=submit]")) {
    const box = el.getBoundingClientRect();
    if (!box.width || getComputedStyle(el).visibility === "hidden") continue;
    for (let parent = el.parentElement; parent; parent = parent.parentElement) {
      const style = getComputedStyle(parent);
      if (style.overflowX === "visible" && style.overflowY === "visible") continue;
      const clip = parent.getBoundingClientRect();
      if (box.right > clip.right + 1 || box.left < clip.left - 1) {
        problems.push(`"${el.textContent.trim()}" is cut off`);
      }
      break;
    }
  }
  return problems;
}"""


@pytest.fixture
def page(_chromium, live_server):
    """The shared page fixture's browser, with CSP bypassed and axe-core in every document (an
    init script: a third faster than a script tag added after each load)."""
    context = _chromium.new_context(base_url=live_server.url, bypass_csp=True)
    if AXE.exists():
        context.add_init_script(path=str(AXE))
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _axe(page) -> list[str]:
    """Serious and critical axe-core violations on the page, as "rule: n nodes"."""
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        f"{v['id']} ({v['impact']}): {len(v['nodes'])} x {v['nodes'][0]['target']}"
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def _visit(page, path: str, name: str, found: dict[str, list[str]]) -> None:
    """Load the page once, then check it at each width. The layout follows the width through
    CSS alone (no script reads it), so a resize lays it out as a load at that width would."""
    page.set_viewport_size({"width": WIDTHS[0], "height": 860})
    response = page.goto(path)
    assert response is not None and response.status < 400, (path, response and response.status)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 860})
        problems = page.evaluate(LAYOUT_PROBLEMS)
        if AXE.exists():
            problems += _axe(page)
        if problems:
            found[f"{path} @ {width}"] = problems
        folder = SCREENSHOTS / "pages"
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)


def _name(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home"


def _endpoint_with_a_delivery(user) -> str:
    """A webhook endpoint (Pro has webhooks) whose log holds a failed, then a good, attempt."""
    from django.utils import timezone

    from billing.ledger import change_plan
    from billing.models import Plan
    from webhooks.models import Attempt, Delivery
    from webhooks.service import create_endpoint

    change_plan(user, Plan.objects.get(slug="pro"))
    endpoint, _ = create_endpoint(
        user,
        url="https://hooks.example.com/nano/events",
        description="Production receiver",
        events=["job.succeeded", "job.failed"],
        enabled=True,
    )
    delivery = Delivery.objects.create(
        user=user,
        endpoint=endpoint,
        url=endpoint.url,
        event="job.succeeded",
        message_id=Delivery.new_message_id(),
        payload={},
        status="delivered",
        attempts=2,
    )
    for number, status in ((1, 503), (2, 200)):
        Attempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=timezone.now(),
            status_code=status,
            latency_ms=42,
            response_body='{"received": true}',
        )
    return str(endpoint.pk)


def test_every_page_fits_a_phone_and_a_desktop(page, live_server, alice, mint, api):
    if not AXE.exists() and IN_CI:
        pytest.fail("axe-core is not installed (npm ci; make test does it when npm is there)")
    found: dict[str, list[str]] = {}
    for path in SIGNED_OUT:
        _visit(page, path, "out-" + _name(path), found)

    # A signed-in account with something on every page: keys (one rolled), a job, usage.
    key, secret = mint(alice, name="production server")
    key.roll("24h")
    laptop, _ = mint(alice, name="laptop", scopes=["generate", "jobs:read"])
    type(laptop).objects.filter(pk=laptop.pk).update(
        budget_credits=20, budget_period="day", rate_per_minute=5
    )
    submit = api(
        "post",
        "/api/generate",
        key=secret,
        json={"image": sample_b64(), "template": "Sepia", "templateType": "filters"},
        headers={"Prefer": "respond-async"},
    )
    job = submit.json()["data"]
    api("get", "/api/jobs/00000000-0000-4000-8000-000000000000", key=secret)  # a 404 to filter
    endpoint = _endpoint_with_a_delivery(alice)
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(re.compile(r"/dashboard/$"))
    for path in SIGNED_IN:
        # One file per page, whatever its id.
        name = "in-" + _name(
            path.replace("{job}", "/job/")
            .replace("{endpoint}", "/endpoint/")
            .replace("{request}", "/usage/request/")
        )
        url = path.format(
            job=f"/jobs/{job['id']}/",
            endpoint=f"/settings/webhooks/{endpoint}/",
            request=f"/usage/requests/{submit['X-Request-Id']}/",
        )
        _visit(page, url, name, found)
    # On a phone the links are behind the Menu disclosure, the account ones included.
    page.set_viewport_size({"width": 390, "height": 860})
    page.goto("/dashboard/")
    assert not page.get_by_role("link", name="API Keys").first.is_visible()
    page.get_by_text("Menu", exact=True).click()
    menu = page.get_by_role("navigation", name="Main menu")
    assert menu.get_by_role("link", name="alice@example.com").is_visible()
    page.screenshot(path=str(SCREENSHOTS / "pages" / "menu-open-390.png"))
    menu.get_by_role("link", name="API Keys").click()
    page.wait_for_url("**/settings/api-keys/")
    type(alice).objects.filter(pk=alice.pk).update(is_staff=True, is_superuser=True)
    _visit(page, "/admin/", "admin-index", found)
    (SCREENSHOTS / "pages" / "problems.json").write_text(json.dumps(found, indent=1))
    assert found == {}, json.dumps(found, indent=1)


def test_no_script_lays_out_by_the_width():
    """The check above resizes a loaded page rather than loading it again at each width, which
    is the same only while the layout follows the width through CSS alone."""
    for script in (ROOT / "static" / "js").glob("*.js"):
        reads = re.findall(
            r"matchMedia|innerWidth|clientWidth|offsetWidth|resize", script.read_text()
        )
        assert not reads, f"{script.name} reads the width ({reads}): load each width anew"
