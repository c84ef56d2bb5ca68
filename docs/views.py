"""Developer documentation at /docs/: readable without an account, in the product's look."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.html import escape
from django.utils.safestring import mark_safe

from apikeys.models import PRESETS, ApiKey, Scope
from billing.models import DEFAULT_PLAN_SLUG, Plan, plan_of
from docs import examples
from nanostudio.errors import ERROR_CODES
from studio.engines import ocr, providers
from studio.models import Template


@dataclass(frozen=True)
class Page:
    slug: str
    title: str
    section: str
    examples: list[str] = field(default_factory=list)

    @property
    def template(self) -> str:
        return (
            "docs/" + (self.slug.replace("/", "_").replace("-", "_") or "getting_started") + ".html"
        )

    @property
    def url(self) -> str:
        return f"/docs/{self.slug}/" if self.slug else "/docs/"


PAGES = [
    Page("", "Getting started", "Guides", ["profile"]),
    Page("authentication", "Authentication", "Guides", ["profile"]),
    Page("rate-limits", "Rate limits and credits", "Guides", ["retry"]),
    Page("errors", "Errors", "Guides", ["retry"]),
    Page("image-models", "Image models", "Guides", ["models"]),
    Page("webhooks", "Webhooks and notices", "Guides"),
    Page("api/profile", "Profile", "Endpoints", ["profile"]),
    Page("api/generate", "Generate", "Endpoints", ["generate"]),
    Page("api/ocr", "OCR", "Endpoints", ["ocr"]),
    Page("api/jobs", "Jobs", "Endpoints", ["jobs"]),
    Page("api/templates", "Templates", "Endpoints", ["templates"]),
    Page("api/models", "Models", "Endpoints", ["models"]),
    Page("api/usage", "Usage", "Endpoints", ["usage"]),
    Page("api/requests", "Request log", "Endpoints", ["requests"]),
    Page("api/keys", "Keys", "Endpoints", ["keys"]),
    Page("templates", "Template catalogue", "Reference"),
]
PAGES_BY_SLUG = {page.slug: page for page in PAGES}
_CODE_SPAN_RE = re.compile(r"`([^`]+)`")


def page(request: HttpRequest, slug: str = "") -> HttpResponse:
    current = PAGES_BY_SLUG.get(slug.strip("/"))
    if current is None:
        raise Http404("No such docs page")
    base_url = request.build_absolute_uri("/").rstrip("/")
    your_key = None
    if request.user.is_authenticated:
        # The hint of one of their keys, to recognise it by; the secret is never shown again.
        your_key = ApiKey.objects.filter(user=request.user).live().first()
    sections: dict[str, list[Page]] = {}
    for entry in PAGES:
        sections.setdefault(entry.section, []).append(entry)
    context = {
        "page": current,
        "sections": sections,
        "base_url": base_url,
        "your_key": your_key,
        "examples": {name: examples.snippets(name, base_url) for name in current.examples},
        "responses": {name: examples.response_sample(name) for name in current.examples},
        "plans": Plan.objects.public(),
        "error_codes": [
            (code, status, _inline_code(meaning)) for code, (status, meaning) in ERROR_CODES.items()
        ],
        "presets": [(label, scopes) for label, scopes in PRESETS.values()],
        "scopes": Scope.choices,
        "ocr_languages": ocr.languages,  # called by the template, on the OCR page only
        "retention_days": settings.USAGE_RETENTION_DAYS,
    }
    if current.slug == "templates":
        # Availability on the reader's plan, or on the plan a new account starts on.
        plan = plan_of(request.user) if request.user.is_authenticated else None
        plan = plan or Plan.objects.filter(slug=DEFAULT_PLAN_SLUG).first()
        context["catalogue_plan"] = plan
        context["catalogue"] = Template.objects.catalogue(plan)
    if current.slug == "webhooks":
        from webhooks.models import EVENTS

        context["events"] = EVENTS.items()
    if current.slug == "image-models":
        context["providers"] = providers.all_providers().values()
        context["default_provider"] = providers.default()
    return render(request, current.template, context)


def _inline_code(text: str) -> str:
    """The error table's Markdown `code` spans (written for the OpenAPI page) as HTML."""
    return mark_safe(_CODE_SPAN_RE.sub(r"<code>\1</code>", escape(text)))  # noqa: S308 (escaped)
