"""Typed request classes, so views say what they can rely on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from accounts.models import User
    from apikeys.models import ApiKey


class AuthedRequest(HttpRequest):
    """A browser request from a logged-in user (behind @login_required)."""

    user: User


class ApiRequest(HttpRequest):
    """An /api request authenticated by an API key: `auth` is the key, `user` its owner."""

    auth: ApiKey
    user: User
    request_id: str


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address; behind a proxy (TRUST_X_FORWARDED_FOR) the first forwarded hop."""
    from django.conf import settings

    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None


def add_server_timing(request: HttpRequest, name: str, started: float) -> None:
    """Record a step's duration (since `started`, a perf_counter value) for `Server-Timing`."""
    import time

    timings = request.__dict__.setdefault("server_timing", {})
    timings[name] = (time.perf_counter() - started) * 1000
