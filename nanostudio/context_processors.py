from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, Any]:
    # The site's own address as the visitor reached it, for code samples.
    return {"BASE_URL": request.build_absolute_uri("/").rstrip("/"), "DEBUG": settings.DEBUG}
