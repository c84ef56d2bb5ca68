from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.generic import TemplateView

from accounts import views as account_views
from nanostudio.api import api
from nanostudio.health import readyz
from nanostudio.metrics import metrics

admin.site.site_header = "Nano Studio admin"
admin.site.site_title = "Nano Studio admin"


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers; also the bare-view baseline in `make bench`."""
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("api/", api.urls),  # early: every API call resolves its URL through this list
    path("", account_views.home, name="home"),
    path("", include("accounts.urls")),
    path("", include("apikeys.urls")),
    path("", include("billing.urls")),
    path("", include("usage.urls")),
    path("", include("studio.urls")),
    path("", include("webhooks.urls")),
    path("", include("audit.urls")),
    path("", include("docs.urls")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    # The view answers 404 unless DEBUG is on: it only exists for local development.
    path("dev/mailbox/", account_views.dev_mailbox, name="dev_mailbox"),
    path("robots.txt", TemplateView.as_view(template_name="robots.txt", content_type="text/plain")),
]
